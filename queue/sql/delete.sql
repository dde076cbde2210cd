-- Queue::delete_batch: acknowledge messages by receipt.
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
)
select e.ids as "ids!", e.lease as "lease!"
from emptied e
union all
select array(select x from unnest(s.gone) as x where x <> all(s.kept)), s.lease
from shrunk s

