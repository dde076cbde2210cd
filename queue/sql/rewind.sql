-- Queue::rewind: deliver again messages that are no longer live.
with live as (
    select x.id
    from queue_messages m
    cross join unnest(m.ids) as x(id)
    where m.queue_id = $1 or (m.queue_id = $5::int4 and m.dead_letter_source = $1)
), gone as (
    select c.id + k - 1 as id, c.groups[k] as message_group, c.enqueued_at
    from queue_chunks c
    cross join lateral generate_subscripts(c.bodies, 1) as k
    where c.queue_id = $1
      and c.id >= queue_chunk_of(coalesce($2::int8, 0))
      and c.enqueued_at >= greatest(coalesce($3::timestamptz, '-infinity'::timestamptz), $4)
      and c.id + k - 1 >= coalesce($2::int8, 0)
      and not exists (select 1 from live l where l.id = c.id + k - 1)
), restored as (
    insert into queue_messages (queue_id, pos, ids, message_group, visible_at,
                                enqueued_at)
    select $1, min(id), array_agg(id order by id), message_group, now(), enqueued_at
    from (
        select g.*,
               (row_number() over (partition by enqueued_at, message_group order by id)
                   - 1) / $6 as run
        from gone g
    ) r
    group by enqueued_at, message_group, run
    returning cardinality(ids) as n
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live)
    select $1, 0, sum(n) from restored having sum(n) > 0
)
select coalesce(sum(n), 0)::int8 as "restored!" from restored

