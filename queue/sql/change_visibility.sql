-- Queue::change_visibility: extend or release one lease.
with moved as (
    update queue_messages m
    set ids = array(select x from unnest(m.ids) with ordinality as u(x, i)
                    where x <> $3 order by i)
    where (m.id = $2 or m.origin = $2)
      and m.queue_id + 0 = $1 and m.lease = $4 and m.visible_at > now()
      and $3 = any(m.ids) and cardinality(m.ids) > 1
    returning m.queue_id, m.message_group, m.lease, m.receive_count, m.enqueued_at,
              m.first_received_at, m.dead_letter_source, m.dead_letter_reason,
              m.visible_at as was,
              set_config('synchronous_commit', 'off', true)
), alone as (
    insert into queue_messages (queue_id, pos, ids, origin, message_group, visible_at,
                                lease, receive_count, enqueued_at, first_received_at,
                                dead_letter_source, dead_letter_reason)
    select queue_id, $3, array[$3::int8], $2, message_group,
           now() + make_interval(secs => $5), lease, receive_count,
           enqueued_at, first_received_at, dead_letter_source, dead_letter_reason
    from moved
    returning id
), single as (
    update queue_messages m
    set visible_at = now() + make_interval(secs => $5)
    where (m.id = $2 or m.origin = $2)
      and m.queue_id + 0 = $1 and m.lease = $4 and m.visible_at > now()
      and m.ids = array[$3::int8]
    -- The row as this statement's snapshot saw it, for its old
    -- counter bucket.
    returning m.id,
              (select o.visible_at from queue_messages o where o.id = m.id) as was,
              set_config('synchronous_commit', 'off', true)
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live, leased, delayed, dead_lettered)
    select d.queue_id, d.bucket, sum(d.live), sum(d.leased), sum(d.delayed), sum(d.dead_lettered)
    from (
        select $1, queue_bucket(was), 0, -1, 0, 0 from moved
        union all select $1, queue_bucket(was), 0, -1, 0, 0 from single
        union all select $1, queue_bucket(now() + make_interval(secs => $5)), 0, 1, 0, 0
                  from (select from moved union all select from single) changed
                  where $5 > 0
    ) as d(queue_id, bucket, live, leased, delayed, dead_lettered)
    where d.queue_id is not null
    group by d.queue_id, d.bucket
    order by d.queue_id, d.bucket
)
select (select count(*) from alone) + (select count(*) from single) as "changed!"

