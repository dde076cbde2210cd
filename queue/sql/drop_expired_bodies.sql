-- Maintenance::drop_expired_bodies: body partitions hold the messages of
-- every queue, so one is kept for the longest retention or rewind window
-- of any queue; with no queue at all nothing needs keeping.
select queue_drop_expired_partitions(make_interval(secs => coalesce(
    (select max(greatest(retention_ms, rewind_window_ms)) from queue_queues), 0
)::float8 / 1000)) as "dropped!"
