-- Queues::write: create a queue or, when $11 (replace) is true, update it.
-- One upsert serves both `put` and `ensure`: with replace false the conflict
-- updates nothing and no row comes back, which tells the caller the queue was
-- kept. An inserted row has no xmax, an updated one does, which tells a
-- creation from an update without a second read.
-- $1-$10: the columns in the order listed; $11: replace.
insert into queue_queues as q (
    name, kind, visibility_timeout_ms, max_receive_count, dead_letter_queue,
    retention_ms, rewind_window_ms, delay_ms, max_message_bytes, polling_wait_ms
)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
on conflict (name) do update set
    kind = excluded.kind,
    visibility_timeout_ms = excluded.visibility_timeout_ms,
    max_receive_count = excluded.max_receive_count,
    dead_letter_queue = excluded.dead_letter_queue,
    retention_ms = excluded.retention_ms,
    rewind_window_ms = excluded.rewind_window_ms,
    delay_ms = excluded.delay_ms,
    max_message_bytes = excluded.max_message_bytes,
    polling_wait_ms = excluded.polling_wait_ms,
    updated_at = now()
where $11
returning (q.xmax = 0) as "created!"
