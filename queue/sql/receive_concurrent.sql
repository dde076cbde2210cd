-- Queue::receive on a concurrent queue: lease whole runs in id order.
with picked as (
    select id, pos, ids, message_group, receive_count, enqueued_at,
           first_received_at, dead_letter_source, dead_letter_reason,
           coalesce(receive_count >= (select $5::int4), false) as dead
    from queue_messages
    where queue_id = (select $1::int4) and visible_at <= now()
    order by pos
    limit (select $6::int8)
    for update skip locked
), planned as (
    select p.*,
           least(cardinality(p.ids), $2 - coalesce(sum(cardinality(p.ids))
               filter (where not p.dead)
               over (order by p.pos rows between unbounded preceding and 1 preceding), 0))
               as take
    from picked p
), taken as (
    select * from planned where not dead and take > 0
), leased as (
    update queue_messages m
    set (ids, visible_at, lease, receive_count, first_received_at) = (
        select t.ids[:t.take], now() + make_interval(secs => $3), $4::uuid,
               t.receive_count + 1, coalesce(t.first_received_at, now())
        from taken t where t.id = m.id
    )
    where m.id = any(array(select id from taken))
    returning m.id, m.ids, m.receive_count, m.enqueued_at, m.first_received_at,
              m.dead_letter_reason, m.dead_letter_source,
              set_config('synchronous_commit', 'off', true)
), tails as (
    insert into queue_messages (queue_id, pos, ids, message_group, visible_at,
                                receive_count, enqueued_at, first_received_at,
                                dead_letter_source, dead_letter_reason)
    select $1, t.ids[t.take + 1], t.ids[t.take + 1:], t.message_group, now(),
           t.receive_count, t.enqueued_at, t.first_received_at, t.dead_letter_source,
           t.dead_letter_reason
    from leased l
    join taken t on t.id = l.id
    where t.take < cardinality(t.ids)
), counted as (
    insert into queue_counter_changes (queue_id, bucket, leased)
    select $1, queue_bucket(now() + make_interval(secs => $3)),
           sum(cardinality(ids))
    from leased
    having count(*) > 0
)
select l.id as "row_id!", l.ids as "ids?",
       case when l.ids[cardinality(l.ids)] - l.ids[1] = cardinality(l.ids) - 1
                 and queue_chunk_of(l.ids[1])
                     = queue_chunk_of(l.ids[cardinality(l.ids)])
            then (select c.bodies[l.ids[1] - c.id + 1
                                  : l.ids[cardinality(l.ids)] - c.id + 1]
                  from queue_chunks c
                  where c.id = queue_chunk_of(l.ids[1]))
            else array(select b.body from queue_bodies_of(l.ids) as b
                       order by b.id)
       end as "bodies?",
       l.receive_count as "receive_count!", l.enqueued_at as "enqueued_at!",
       l.first_received_at as "first_received_at!",
       l.dead_letter_reason,
       case when l.dead_letter_source is not null
            then (select q.name from queue_queues q where q.id = l.dead_letter_source) end as dead_letter_source
from leased l
union all
select id, null, null, receive_count, enqueued_at, now(), null, null
from picked
where dead

