-- sqs::fifo::claim: claim deduplication ids $2 of queue $1 for $3 seconds.
-- Only the ids this statement claimed come back: one not yet seen, or one
-- whose window is over, which the conflict clause claims afresh, so expired
-- ids need not be swept first. An id an earlier send holds is left as it is
-- and not returned.
insert into queue_sqs_dedup (queue, dedup_id, expires_at)
select $1, d, now() + make_interval(secs => $3) from unnest($2::text[]) as d
on conflict (queue, dedup_id) do update
    set message = null, sequence_number = null, expires_at = excluded.expires_at
    where queue_sqs_dedup.expires_at < now()
returning dedup_id
