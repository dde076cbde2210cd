-- Router::write_placement: the active parts of queue $1 on shards other than
-- $2 become draining, not deleted: receivers keep emptying them until they
-- are retired.
update queue_placements set state = 'draining', since = now()
where queue = $1 and state = 'active' and shard_id <> all($2)
