-- Queue::stats: read from the counters, never by counting rows, so the cost
-- does not grow with the backlog. Bucket 0 holds the running totals; leases
-- and delays count in the bucket of the second they end, and only buckets
-- of seconds still to come count: a lease or delay ending within the current
-- second already counts as over, so a message released with a lock of 0
-- shows as visible at once, as SQS shows it. Joining the counters onto a
-- one-row subquery gives zeros for a queue that has none. The oldest
-- message is the head of the queue's index, one probe.
-- $1: the queue's id.
with c as (
    select coalesce(sum(live) filter (where bucket = 0), 0) as live,
           coalesce(sum(leased) filter (where bucket > s.now), 0) as leased,
           coalesce(sum(delayed) filter (where bucket > s.now), 0) as delayed,
           coalesce(sum(dead_lettered) filter (where bucket = 0), 0) as dead_lettered
    from (select queue_bucket(now()) as now) s
    left join queue_counters on queue_id = $1
)
select c.live::int8 as "live!", c.leased::int8 as "in_flight!",
       c.delayed::int8 as "delayed!", c.dead_lettered::int8 as "dead_lettered!",
       coalesce(extract(epoch from now() - (
           select enqueued_at from queue_messages
           where queue_id = $1 order by pos limit 1
       )), 0)::float8 as "oldest_age!"
from c
