-- Topics::subscriptions: the subscriptions of topic $1. A left join from the
-- topic gives one row of nulls for a topic without subscriptions and none
-- for no topic, so one read tells the two apart; hence every column is
-- nullable.
select s.name as "name?", s.protocol as "protocol?", s.endpoint as "endpoint?",
       s.tags as "tags?", s.binding_keys as "binding_keys?", s.retry as "retry?",
       s.retry_interval_ms as "retry_interval_ms?", s.format as "format?",
       s.pending as "pending?"
from queue_topics t left join queue_subscriptions s on s.topic_id = t.id
where t.name = $1 order by s.name
