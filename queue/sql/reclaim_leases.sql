-- Queue::reclaim: lease again, for a second and under the same lease, the
-- messages of receipts (message ids $2, rows $3, leases $4) whose lock ran
-- out while nobody received them again: their row still carries the
-- receipt's lease, which any later receive would have replaced. Found as
-- delete.sql finds them, by row id or origin. The lease's old bucket is in
-- the past and no longer counts; the new one does, so the delete or
-- visibility change that follows counts out of it.
with reclaimed as (
    update queue_messages m
    set visible_at = now() + interval '1 second'
    from unnest($2::int8[], $3::int8[], $4::uuid[]) as r(id, row_id, lease)
    where (m.id = r.row_id or m.origin = r.row_id)
      and m.queue_id + 0 = $1 and m.lease = r.lease and r.id = any(m.ids)
      and m.visible_at <= now()
    returning m.ids, set_config('synchronous_commit', 'off', true)
), counted as (
    insert into queue_counter_changes (queue_id, bucket, leased)
    select $1, queue_bucket(now() + interval '1 second'), sum(cardinality(ids))
    from reclaimed
    having count(*) > 0
)
select count(*) as "reclaimed!" from reclaimed
