-- Router::revive: make the part of queue $1 on shard $2 draining again.
-- Only a retired part is changed: an active or draining one already takes
-- receives, and restarting its `since` would put off its retirement.
update queue_placements set state = 'draining', since = now()
where queue = $1 and shard_id = $2 and state = 'retired'
