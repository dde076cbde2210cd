-- Maintenance::expire_messages: drop messages past their queue's retention.
with gone as (
    delete from queue_messages m
    using (
        select e.queue_id, e.id
        from queue_queues q
        cross join lateral (
            select queue_id, id from queue_messages
            where queue_id = q.id
              and enqueued_at < now() - make_interval(secs => q.retention_ms::float8 / 1000)
            order by pos
            limit $1
        ) e
        where q.retention_ms is not null and q.dead_letter_queue is null
    ) x
    where m.queue_id = x.queue_id and m.id = x.id
    returning m.queue_id, m.ids, m.visible_at, m.lease, m.dead_letter_source
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live, leased, delayed, dead_lettered)
    select c.queue_id, c.bucket, sum(c.live), sum(c.leased), sum(c.delayed), sum(c.dead_lettered)
    from gone g
    cross join lateral queue_counts_of(g.queue_id, -cardinality(g.ids), g.visible_at, g.lease,
                                       g.dead_letter_source) c
    group by c.queue_id, c.bucket
    order by c.queue_id, c.bucket
)
select count(*) as "rows!" from gone

