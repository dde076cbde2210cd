-- Queue::dead_letter: move rows past their receive limit to the dead letter
-- queue. Their receive count goes along, as SQS's ApproximateReceiveCount
-- does; only a queue that is its own dead letter queue starts it afresh, or
-- its message would be moved again at every receive and never delivered.
with picked as (
    select id, dead_letter_source
    from queue_messages
    where id = any($3::int8[]) and queue_id = $1 and visible_at <= now()
      and receive_count >= $4
    for update skip locked
), dead as (
    update queue_messages m
    set queue_id = $2, visible_at = now(), lease = null,
        receive_count = case when $1 = $2 then 0 else m.receive_count end,
        dead_letter_source = $1, dead_letter_reason = 'max_receives'
    from picked p
    where m.id = p.id
    -- A message that had come here as a dead letter of another
    -- queue leaves that queue's dead letter count.
    returning cardinality(m.ids) as n, p.dead_letter_source as was_from
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live, dead_lettered)
    select d.queue_id, 0, sum(d.live), sum(d.dead_lettered)
    from dead
    cross join lateral (values ($1, -n, n), ($2, n, 0), (was_from, 0, -n))
        as d(queue_id, live, dead_lettered)
    where d.queue_id is not null
    group by d.queue_id
    order by d.queue_id
)
select coalesce(sum(n), 0)::int8 as "moved!" from dead

