-- Maintenance::sweep_counters: fold the running totals of backends that are
-- gone (rows keyed by their pid, see queue_counters) into slot 0, so the
-- rows a sum reads stay few. Live backends keep their rows, as they may be
-- adding to them this instant. A pid can come back as a new backend, which
-- then simply adds to the same row; folding it meanwhile moves its value,
-- never loses it. Rows are upserted in queue order, so that two folds at
-- once take their locks in one order.
with gone as (
    delete from queue_counters c
    where c.bucket = 0 and c.slot <> 0
      and c.slot not in (select pid from pg_stat_activity where pid is not null)
    returning queue_id, live, dead_lettered
), folded as (
    insert into queue_counters as c (queue_id, bucket, slot, live, dead_lettered)
    select queue_id, 0, 0, sum(live), sum(dead_lettered) from gone
    group by queue_id
    order by queue_id
    on conflict (queue_id, bucket, slot) do update set
        live = c.live + excluded.live,
        dead_lettered = c.dead_lettered + excluded.dead_lettered
)
select count(*) as "folded!" from gone
