-- Router::write_placement: a queue $1 with no placement lives on shard 0
-- (the control database) if it exists there; that is written out as an
-- active part first, so that placing the queue elsewhere drains it rather
-- than forgetting the messages it holds.
insert into queue_placements (queue, shard_id, state)
select $1, 0, 'active'
where not exists (select 1 from queue_placements where queue = $1)
  and exists (select 1 from queue_queues where name = $1)
