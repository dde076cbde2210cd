-- Router::write_placement: make the parts of queue $1 on shards $2 active,
-- adding those it lacks. Only a part that was not active already gets a new
-- `since`, which times its state.
insert into queue_placements (queue, shard_id, state)
select $1, unnest($2::int4[]), 'active'
on conflict (queue, shard_id) do update
    set state = 'active', since = now()
    where queue_placements.state <> 'active'
