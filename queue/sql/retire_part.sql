-- Router::settle: retire the part of queue $1 on shard $2 only if it is
-- still draining since $3, as it was read: if anything changed the part
-- meanwhile (a move made it active again, say), nothing is updated.
update queue_placements set state = 'retired', since = now()
where queue = $1 and shard_id = $2 and state = 'draining' and since = $3
