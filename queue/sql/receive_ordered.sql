-- Queue::receive on an ordered queue: lease the visible head of each group.
with recursive groups as (
    (select message_group as name from queue_messages
     where queue_id = $1 and message_group is not null
     order by message_group limit 1)
    union all
    select (select message_group from queue_messages
            where queue_id = $1 and message_group > g.name
            order by message_group limit 1)
    from groups g
    where g.name is not null
), heads as (
    select h.id, h.visible_at
    from groups g
    cross join lateral (
        select id, visible_at from queue_messages
        where queue_id = $1 and message_group = g.name
        order by pos limit 1
    ) h
    where g.name is not null
), picked as (
    select m.id, m.receive_count, m.enqueued_at,
           coalesce(m.receive_count >= $5::int4, false) as dead
    from queue_messages m
    where m.id = any(array(select id from heads where visible_at <= now()))
      and m.visible_at <= now()
    order by m.pos
    limit (select $2::int8)
    for update of m skip locked
), leased as (
    update queue_messages m
    set visible_at = now() + make_interval(secs => $3),
        lease = $4,
        receive_count = m.receive_count + 1,
        first_received_at = coalesce(m.first_received_at, now())
    where m.id = any(array(select id from picked where not dead))
    returning m.id, m.ids, m.receive_count, m.enqueued_at, m.first_received_at,
              m.dead_letter_reason, set_config('synchronous_commit', 'off', true)
), counted as (
    insert into queue_counter_changes (queue_id, bucket, leased)
    select $1, queue_bucket(now() + make_interval(secs => $3)),
           sum(cardinality(ids))
    from leased
    having count(*) > 0
)
select l.id as "row_id!", l.ids as "ids?",
       array[(select c.bodies[l.ids[1] - c.id + 1]
              from queue_chunks c
              where c.id = queue_chunk_of(l.ids[1]))] as "bodies?",
       l.receive_count as "receive_count!", l.enqueued_at as "enqueued_at!",
       l.first_received_at as "first_received_at!",
       l.dead_letter_reason
from leased l
union all
select id, null, null, receive_count, enqueued_at, now(), null
from picked
where dead

