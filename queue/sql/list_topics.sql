-- Topics::topics: every topic with its subscription count, counted by a
-- subquery per topic rather than a join and group by, so a topic without
-- subscriptions still comes back, with 0.
select t.name, t.filter, t.message_lifetime_ms, t.max_message_bytes,
       (select count(*) from queue_subscriptions s where s.topic_id = t.id) as "subscriptions!"
from queue_topics t order by t.name
