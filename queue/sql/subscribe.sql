-- Topics::subscribe_in: create or change subscription $2 of topic $1. The
-- topic's id comes from a select in the insert itself, so a topic that does
-- not exist (or was just deleted) inserts nothing, which the caller reports,
-- with no separate lookup to race with.
-- $3-$11: the subscription's columns in the order listed.
insert into queue_subscriptions
    (topic_id, name, protocol, endpoint, tags, binding_keys, retry,
     retry_interval_ms, format, secret, public_only)
select id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 from queue_topics where name = $1
on conflict (topic_id, name) do update set
    protocol = excluded.protocol, endpoint = excluded.endpoint,
    tags = excluded.tags, binding_keys = excluded.binding_keys,
    retry = excluded.retry, retry_interval_ms = excluded.retry_interval_ms,
    format = excluded.format, secret = excluded.secret,
    public_only = excluded.public_only
