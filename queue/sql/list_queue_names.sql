-- Router::list: queues without a placement live in the control database
-- and queues with one may live only on other shards, so the names come from
-- both tables; `union` drops the names that are in both.
select name as "name!" from queue_queues
union
select queue from queue_placements where state <> 'retired'
order by 1
