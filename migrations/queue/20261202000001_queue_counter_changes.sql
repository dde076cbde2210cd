-- Counters change in one place. A statement inserts what it changed into the
-- view queue_counter_changes (one row per queue and bucket, summed), and this
-- rule adds it to the statement's backend's own counter row: rewritten into
-- the statement when it is planned, it costs what writing the upsert out in
-- every statement did.
create view queue_counter_changes as
    select queue_id, bucket, live, leased, delayed, dead_lettered
    from queue_counters where false;

create rule queue_counter_changes_add as on insert to queue_counter_changes do instead
    insert into queue_counters as c (queue_id, bucket, slot, live, leased, delayed, dead_lettered)
    values (new.queue_id, new.bucket, pg_backend_pid(), coalesce(new.live, 0),
            coalesce(new.leased, 0), coalesce(new.delayed, 0), coalesce(new.dead_lettered, 0))
    on conflict (queue_id, bucket, slot) do update set
        live = c.live + excluded.live,
        leased = c.leased + excluded.leased,
        delayed = c.delayed + excluded.delayed,
        dead_lettered = c.dead_lettered + excluded.dead_lettered;

-- What a live row of `messages` messages counts for: `live` in its queue,
-- `leased` or `delayed` in the bucket of the second it becomes visible (when
-- that is still ahead), and `dead_lettered` in the queue it was dead-lettered
-- from. A row that goes counts the same with `messages` negated. Inlined
-- into the statements that use it.
create function queue_counts_of(
    queue_id integer, messages bigint, visible_at timestamptz, lease uuid,
    dead_letter_source integer
) returns table (queue_id integer, bucket bigint, live bigint, leased bigint, delayed bigint,
                 dead_lettered bigint)
language sql stable parallel safe as $$
    select $1, 0::int8, $2, 0::int8, 0::int8, 0::int8
    union all
    select $1, queue_bucket($3), 0, case when $4 is not null then $2 else 0 end,
           case when $4 is null then $2 else 0 end, 0
    where $3 > now()
    union all
    select $5, 0, 0, 0, 0, $2
    where $5 is not null
$$;
