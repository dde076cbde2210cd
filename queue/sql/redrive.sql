-- Queue::redrive: move dead letters back to their queue.
with moved as (
    update queue_messages m
    set queue_id = $2, visible_at = now(), lease = null, receive_count = 0,
        dead_letter_source = null, dead_letter_reason = null
    where m.queue_id = $1 and m.dead_letter_source = $2
    -- The row as this statement's snapshot saw it: one in flight
    -- in the dead letter queue leaves its counter bucket there.
    returning cardinality(m.ids) as n,
              (select o.visible_at from queue_messages o where o.id = m.id) as was
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live, leased, delayed, dead_lettered)
    select d.queue_id, d.bucket, sum(d.live), sum(d.leased), sum(d.delayed), sum(d.dead_lettered)
    from (
        select $1, 0::int8, -n, 0, 0, 0 from moved
        union all select $2, 0, n, 0, 0, -n from moved
        union all select $1, queue_bucket(was), 0, -n, 0, 0 from moved where was > now()
    ) as d(queue_id, bucket, live, leased, delayed, dead_lettered)
    where d.queue_id is not null
    group by d.queue_id, d.bucket
    order by d.queue_id, d.bucket
)
select coalesce(sum(n), 0)::int8 as "moved!" from moved

