-- Topics::write_topic: create a topic or, when $5 (replace) is true, change
-- it. One upsert serves both `put_topic` and `ensure_topic`: with replace
-- false a conflict leaves the existing topic as it is.
-- $1 name, $2 filter, $3 message_lifetime_ms, $4 max_message_bytes.
insert into queue_topics (name, filter, message_lifetime_ms, max_message_bytes)
values ($1, $2, $3, $4)
on conflict (name) do update set
    filter = excluded.filter,
    message_lifetime_ms = excluded.message_lifetime_ms,
    max_message_bytes = excluded.max_message_bytes
where $5
