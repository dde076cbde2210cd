-- Router::shards: every shard with the number of queues it serves, counted
-- by a subquery per shard so that a shard with none still comes back. Retired
-- parts are not counted: they hold nothing and take no traffic.
select s.id, s.name, s.url,
       (select count(*) from queue_placements p
        where p.shard_id = s.id and p.state <> 'retired') as "queues!"
from queue_shards s order by s.id
