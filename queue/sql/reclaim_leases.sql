-- Queue::reclaim: for receipts (message ids $2, rows $3, leases $4) the
-- native API calls stale, the lease each message is under now. A message
-- whose lock ran out is leased again for a second, under the lease its row
-- carries, so the delete or visibility change that follows takes effect:
-- with $5 false only when that is the receipt's own lease (nobody received
-- the message since, which a later receive would have replaced); with $5
-- true whatever receive it came from. With $5 true a message still locked
-- by a later receive answers with that receive's lease. Found as
-- delete.sql finds them, by row id or origin. A late lease's old bucket is
-- in the past and no longer counts; the new one does, so the delete or
-- visibility change that follows counts out of it. Every CTE reads the
-- statement's one snapshot, so `held` sees no row `reclaimed` took.
with wanted as (
    select * from unnest($2::int8[], $3::int8[], $4::uuid[]) as r(id, row_id, lease)
), reclaimed as (
    update queue_messages m
    set visible_at = now() + interval '1 second'
    from wanted r
    where (m.id = r.row_id or m.origin = r.row_id)
      and m.queue_id + 0 = $1 and r.id = any(m.ids) and m.lease is not null
      and (m.lease = r.lease or $5) and m.visible_at <= now()
    returning m.lease, m.ids, set_config('synchronous_commit', 'off', true)
), counted as (
    insert into queue_counter_changes (queue_id, bucket, leased)
    select $1, queue_bucket(now() + interval '1 second'), sum(cardinality(ids))
    from reclaimed
    having count(*) > 0
), held as (
    select r.id, m.lease
    from queue_messages m
    join wanted r on (m.id = r.row_id or m.origin = r.row_id) and r.id = any(m.ids)
    where $5 and m.queue_id + 0 = $1 and m.lease is not null and m.visible_at > now()
)
select r.id as "id!", c.lease as "lease!"
from reclaimed c
join wanted r on r.id = any(c.ids) and (r.lease = c.lease or $5)
union all
select id, lease from held
