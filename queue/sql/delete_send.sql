-- Queue::reply_batch: the deletes of sql/delete.sql ($1-$4) and the send of
-- sql/send.sql ($5-$12, to another queue of the database) as one statement,
-- so that a message is acknowledged with its replies in one round trip and
-- one commit, never one without the other.
with found as (
    select m.id, m.lease,
           array(select r.id from unnest($2::int8[], $4::uuid[]) as r(id, lease)
                 where r.lease = m.lease and r.id = any(m.ids)) as gone
    from queue_messages m
    where (m.id = any($3::int8[]) or m.origin = any($3::int8[]))
      and m.queue_id + 0 = $1 and m.visible_at > now()
), hit as (
    select * from found where cardinality(gone) > 0
), emptied as (
    delete from queue_messages m
    using hit h
    where m.id = any(array(select id from hit)) and h.id = m.id
      and m.lease = h.lease and m.visible_at > now() and m.ids <@ h.gone
    returning m.ids, m.lease, m.visible_at, m.dead_letter_source,
              set_config('synchronous_commit', 'off', true)
), shrunk as (
    update queue_messages m
    set ids = array(select x from unnest(m.ids) with ordinality as u(x, i)
                    where x <> all(h.gone) order by i)
    from hit h
    where m.id = any(array(select id from hit)) and h.id = m.id
      and m.lease = h.lease and m.visible_at > now()
      and m.ids && h.gone and not m.ids <@ h.gone
    returning m.ids as kept, h.gone, m.lease, m.visible_at, m.dead_letter_source,
              (select count(*) from unnest(h.gone) x where x <> all(m.ids))::int4
                  as removed,
              set_config('synchronous_commit', 'off', true)
), counted as (
    insert into queue_counter_changes (queue_id, bucket, live, leased, delayed, dead_lettered)
    select d.queue_id, d.bucket, sum(d.live), sum(d.leased), sum(d.delayed), sum(d.dead_lettered)
    from (
        select $1, 0::int8, -cardinality(ids), 0, 0, 0 from emptied
        union all select $1, queue_bucket(visible_at), 0, -cardinality(ids), 0, 0 from emptied
        union all select dead_letter_source, 0, 0, 0, 0, -cardinality(ids) from emptied
        union all select $1, 0, -removed, 0, 0, 0 from shrunk
        union all select $1, queue_bucket(visible_at), 0, -removed, 0, 0 from shrunk
        union all select dead_letter_source, 0, 0, 0, 0, -removed from shrunk
    ) as d(queue_id, bucket, live, leased, delayed, dead_lettered)
    where d.queue_id is not null
    group by d.queue_id, d.bucket
    order by d.queue_id, d.bucket
), base as materialized (
    select nextval('queue_message_ids') as id
), chunks as (
    insert into queue_chunks (id, queue_id, bodies, groups)
    select base.id + k * $10, $5, $6[k * $10 + 1 : (k + 1) * $10],
           case when $11 then ($7::text[])[k * $10 + 1 : (k + 1) * $10] end
    from base, generate_series(0, (cardinality($6::text[]) - 1) / $10) as k
), runs as (
    insert into queue_messages (queue_id, pos, ids, message_group, visible_at,
                                enqueued_at)
    select $5, base.id + r.start,
           array(select generate_series(base.id + r.start,
                                        base.id + r.start + r.len - 1)),
           case when $11 then $7[r.start + 1] end,
           now() + make_interval(secs => r.delay), now()
    from base, unnest((select $8::int4[]), (select $9::int4[]), (select $12::float8[]))
        as r(start, len, delay)
), sent_counted as (
    insert into queue_counter_changes (queue_id, bucket, live, delayed)
    select $5, d.bucket, sum(d.live), sum(d.delayed)
    from unnest((select $9::int4[]), (select $12::float8[])) as r(len, delay)
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
select e.ids as "ids?", e.lease as "lease?", null::int8 as "first?"
from emptied e
union all
select array(select x from unnest(s.gone) as x where x <> all(s.kept)), s.lease, null
from shrunk s
union all
select null, null, id from base
