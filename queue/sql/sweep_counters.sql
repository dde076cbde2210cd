-- Maintenance::sweep_counters: drop spent counter buckets and the counters
-- of queues that are gone. Bucket 0 holds the running totals and is never
-- swept. A past bucket no longer counts but is left a minute as slack:
-- now() is when a transaction began, so one still running may yet write a
-- bucket the clock has already left behind.
delete from queue_counters c
where (c.bucket > 0 and c.bucket < queue_bucket(now()) - 60)
   or not exists (select 1 from queue_queues q where q.id = c.queue_id)
