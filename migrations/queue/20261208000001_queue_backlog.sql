-- Each queue's backlog, for autoscalers (KEDA's PostgreSQL scaler): how
-- many messages wait (visible) and how many are being worked on (in_flight:
-- leased), so that a scaler can size a fleet by the work in the system,
-- not drop busy workers once nothing waits. A role granted this view alone
-- (queue_grant_backlog) reads the counts and nothing of what messages say. Read as Queue::stats reads
-- it, from the counters: running totals in bucket 0, leases and delays in
-- the bucket of the second they end, counted while that second is to come.
-- Messages on other shards' databases are not in this database's counters.
create view queue_backlog as
select q.name,
       greatest(coalesce(sum(c.live) filter (where c.bucket = 0), 0)
                - coalesce(sum(c.leased) filter (where c.bucket > s.now), 0)
                - coalesce(sum(c.delayed) filter (where c.bucket > s.now), 0), 0)::int8
           as visible,
       coalesce(sum(c.leased) filter (where c.bucket > s.now), 0)::int8 as in_flight
from queue_queues q
cross join (select queue_bucket(now()) as now) s
left join queue_counters c on c.queue_id = q.id
group by q.name, s.now;

-- Lets `reader` select queue_backlog and nothing else; granting again is
-- harmless.
create function queue_grant_backlog(reader text) returns void
language plpgsql as $$
begin
    execute format('grant usage on schema %I to %I', current_schema(), reader);
    execute format('grant select on queue_backlog to %I', reader);
end
$$;
