-- Router::settle: the parts that may change state: draining ones that have
-- drained for longer than the retire delay ($1, seconds), and every retired
-- one, since a sender that stalled past the delay can still have written
-- into a part after it retired. `since` comes back so the retire that
-- follows can check that nothing changed the part in between.
select p.queue, p.shard_id, p.state, p.since
from queue_placements p
where p.state = 'retired'
   or (p.state = 'draining' and p.since < now() - make_interval(secs => $1))
order by p.queue, p.shard_id
