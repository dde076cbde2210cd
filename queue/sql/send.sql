-- Queue::send_batch: bodies in chunks, a live row per run, the counters.
with base as materialized (
    select nextval('queue_message_ids') as id
), chunks as (
    insert into queue_chunks (id, queue_id, bodies, groups)
    select base.id + k * $6, $1, $2[k * $6 + 1 : (k + 1) * $6],
           case when $7 then ($3::text[])[k * $6 + 1 : (k + 1) * $6] end
    from base, generate_series(0, (cardinality($2::text[]) - 1) / $6) as k
), runs as (
    insert into queue_messages (queue_id, pos, ids, message_group, visible_at,
                                enqueued_at)
    select $1, base.id + r.start,
           array(select generate_series(base.id + r.start,
                                        base.id + r.start + r.len - 1)),
           case when $7 then $3[r.start + 1] end,
           now() + make_interval(secs => r.delay), now()
    from base, unnest((select $4::int4[]), (select $5::int4[]), (select $8::float8[]))
        as r(start, len, delay)
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live, delayed)
    select $1, d.bucket, sum(d.live), sum(d.delayed)
    from unnest((select $5::int4[]), (select $8::float8[])) as r(len, delay)
    cross join lateral (
        values (0::int8, r.len, 0),
               (case when r.delay > 0
                     then queue_bucket(now() + make_interval(secs => r.delay)) end,
                0, r.len)
    ) as d(bucket, live, delayed)
    where d.bucket is not null
    group by d.bucket
    order by d.bucket
)
select id as "id!" from base

