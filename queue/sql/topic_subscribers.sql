-- Topics::publish_in: one statement finds the topic, draws the messages'
-- ids and reads the subscriptions that can take them, so a publish costs
-- one round trip before its writes. For a tag topic it reads only the
-- subscriptions without tags and those sharing one of the messages' ($3),
-- not all of the topic's. An unknown topic returns no row; a topic without
-- such subscriptions returns one, with null subscription columns.
with t as (
    select id, filter, max_message_bytes from queue_topics where name = $1
), ids as (
    select array_agg(nextval('queue_topic_message_ids') order by g) as ids
    from generate_series(1, $2) as g
    where exists (select 1 from t)
)
select t.filter as "filter!", t.max_message_bytes as "max_bytes!",
       (select ids.ids from ids) as "ids!",
       s.id as "sub_id?", s.protocol as "protocol?", s.endpoint as "endpoint?",
       s.tags as "tags?", s.binding_keys as "binding_keys?"
from t
left join queue_subscriptions s
    on s.topic_id = t.id
   and (t.filter = 'routing' or cardinality(s.tags) = 0 or s.tags && $3)
order by s.id
