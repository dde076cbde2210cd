-- Maintenance::dead_letter_expired: move expired messages to the dead letter queue.
with expired as (
    select e.id, q.id as source, d.id as dlq, e.ids, e.visible_at, e.lease,
           e.dead_letter_source as was_from
    from queue_queues q
    join queue_queues d on d.name = q.dead_letter_queue
    cross join lateral (
        select id, ids, visible_at, lease, dead_letter_source from queue_messages
        where queue_id = q.id
          and enqueued_at < now() - make_interval(secs => q.retention_ms::float8 / 1000)
        order by pos
        limit $1
        for update skip locked
    ) e
    where q.retention_ms is not null
), moved as (
    update queue_messages m
    set queue_id = x.dlq, visible_at = now(), lease = null, receive_count = 0,
        dead_letter_source = x.source, dead_letter_reason = 'expired'
    from expired x
    where m.id = x.id
    returning x.source, x.dlq, cardinality(x.ids) as n, x.visible_at, x.lease, x.was_from
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live, leased, delayed, dead_lettered)
    select d.queue_id, d.bucket, sum(d.live), sum(d.leased), sum(d.delayed), sum(d.dead_lettered)
    from (
        select source, 0::int8, -n, 0, 0, n from moved
        union all select dlq, 0, n, 0, 0, 0 from moved
        union all select was_from, 0, 0, 0, 0, -n from moved
        union all select source, queue_bucket(visible_at), 0,
                         case when lease is not null then -n else 0 end,
                         case when lease is null then -n else 0 end, 0
                  from moved where visible_at > now()
    ) as d(queue_id, bucket, live, leased, delayed, dead_lettered)
    where d.queue_id is not null
    group by d.queue_id, d.bucket
    order by d.queue_id, d.bucket
)
select count(*) as "rows!" from moved

