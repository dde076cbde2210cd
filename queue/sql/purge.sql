-- Queue::purge, Queues::delete: remove every live message of a queue; the
-- queues its dead letters came from count them out.
with gone as (
    delete from queue_messages where queue_id = $1
    returning queue_id, ids, visible_at, lease, dead_letter_source
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live, leased, delayed, dead_lettered)
    select c.queue_id, c.bucket, sum(c.live), sum(c.leased), sum(c.delayed), sum(c.dead_lettered)
    from gone g
    cross join lateral queue_counts_of(g.queue_id, -cardinality(g.ids), g.visible_at, g.lease,
                                       g.dead_letter_source) c
    group by c.queue_id, c.bucket
    order by c.queue_id, c.bucket
)
select coalesce(sum(cardinality(ids)), 0)::int8 as "purged!" from gone
