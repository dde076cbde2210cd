-- Queue::delete_batch and Queue::receive run as one statement: the deletes
-- of sql/delete.sql ($1, $2-$4) and the receive of sql/receive_concurrent.sql
-- ($1, $5-$9), so that consumers deleting and consumers receiving on one
-- handle share a round trip and a commit. The deletes touch only leased
-- rows (visible_at > now()) and the receive only visible ones, and now() is
-- one instant for the whole statement, so the two never meet on a row.
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
), picked as (
    select id, pos, ids, message_group, receive_count, enqueued_at,
           first_received_at, dead_letter_source, dead_letter_reason,
           coalesce(receive_count >= (select $8::int4), false) as dead
    from queue_messages
    where queue_id = (select $1::int4) and visible_at <= now()
    order by pos
    limit (select $9::int8)
    for update skip locked
), planned as (
    select p.*,
           least(cardinality(p.ids), $5 - coalesce(sum(cardinality(p.ids))
               filter (where not p.dead)
               over (order by p.pos rows between unbounded preceding and 1 preceding), 0))
               as take
    from picked p
), taken as (
    select * from planned where not dead and take > 0
), leased as (
    update queue_messages m
    set (ids, visible_at, lease, receive_count, first_received_at) = (
        select t.ids[:t.take], now() + make_interval(secs => $6), $7::uuid,
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
    insert into queue_counter_changes (queue_id, bucket, live, leased, delayed, dead_lettered)
    select d.queue_id, d.bucket, sum(d.live), sum(d.leased), sum(d.delayed), sum(d.dead_lettered)
    from (
        select $1, 0::int8, -cardinality(ids), 0, 0, 0 from emptied
        union all select $1, queue_bucket(visible_at), 0, -cardinality(ids), 0, 0 from emptied
        union all select dead_letter_source, 0, 0, 0, 0, -cardinality(ids) from emptied
        union all select $1, 0, -removed, 0, 0, 0 from shrunk
        union all select $1, queue_bucket(visible_at), 0, -removed, 0, 0 from shrunk
        union all select dead_letter_source, 0, 0, 0, 0, -removed from shrunk
        union all select $1, queue_bucket(now() + make_interval(secs => $6)), 0,
                         cardinality(ids), 0, 0 from leased
    ) as d(queue_id, bucket, live, leased, delayed, dead_lettered)
    where d.queue_id is not null
    group by d.queue_id, d.bucket
    order by d.queue_id, d.bucket
)
-- Deleted receipts are the rows with a lease; received rows the others.
select null::int8 as row_id, e.ids as ids, null::text[] as bodies,
       null::int4 as receive_count, null::timestamptz as enqueued_at,
       null::timestamptz as first_received_at, null::text as dead_letter_reason,
       null::text as dead_letter_source, e.lease as lease
from emptied e
union all
select null, array(select x from unnest(s.gone) as x where x <> all(s.kept)),
       null, null, null, null, null, null, s.lease
from shrunk s
union all
select l.id, l.ids,
       case when l.ids[cardinality(l.ids)] - l.ids[1] = cardinality(l.ids) - 1
                 and queue_chunk_of(l.ids[1])
                     = queue_chunk_of(l.ids[cardinality(l.ids)])
            then (select c.bodies[l.ids[1] - c.id + 1
                                  : l.ids[cardinality(l.ids)] - c.id + 1]
                  from queue_chunks c
                  where c.id = queue_chunk_of(l.ids[1]))
            else array(select b.body from queue_bodies_of(l.ids) as b
                       order by b.id)
       end,
       l.receive_count, l.enqueued_at, l.first_received_at, l.dead_letter_reason,
       case when l.dead_letter_source is not null
            then (select q.name from queue_queues q where q.id = l.dead_letter_source) end, null
from leased l
union all
select id, null, null, receive_count, enqueued_at, now(), null, null, null
from picked
where dead
