-- Router::read_route: the parts of queue $1 with the shards they are on, in
-- shard order. A queue with no placement gets no row here; the caller then
-- routes it to the control database.
select p.shard_id, p.state, s.name, s.url
from queue_placements p join queue_shards s on s.id = p.shard_id
where p.queue = $1
order by p.shard_id
