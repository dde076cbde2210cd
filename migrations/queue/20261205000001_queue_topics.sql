-- Topics (CMQ publish/subscribe, queue/src/topics/): a message published to
-- a topic goes to every subscription whose filter takes it, as a message of
-- a queue (protocol `queue`) or an HTTP POST (protocol `http`, delivered from
-- the internal queue `darkroom.topic.deliveries` by pushers).
create table queue_topics (
    id integer generated always as identity primary key,
    name text not null unique check (name ~ '^[A-Za-z0-9_.-]{1,80}$'),
    filter text not null default 'tag' check (filter in ('tag', 'routing')),
    -- How long an HTTP delivery is retried before it is dropped.
    message_lifetime_ms bigint not null default 86400000 check (message_lifetime_ms >= 1000),
    max_message_bytes integer not null default 1048576,
    created_at timestamptz not null default now()
);

create table queue_subscriptions (
    id integer generated always as identity primary key,
    topic_id integer not null references queue_topics (id) on delete cascade,
    name text not null check (name ~ '^[A-Za-z0-9_.-]{1,80}$'),
    protocol text not null check (protocol in ('queue', 'http')),
    -- A queue's name, or an http(s) URL.
    endpoint text not null,
    tags text[] not null default '{}' check (cardinality(tags) <= 5),
    binding_keys text[] not null default '{}',
    retry text not null default 'EXPONENTIAL_DECAY_RETRY'
        check (retry in ('BACKOFF_RETRY', 'EXPONENTIAL_DECAY_RETRY')),
    -- BACKOFF_RETRY's fixed interval.
    retry_interval_ms bigint not null default 10000 check (retry_interval_ms >= 100),
    format text not null default 'JSON' check (format in ('JSON', 'SIMPLIFIED')),
    -- The key of the HMAC-SHA256 signature header on HTTP deliveries.
    secret text,
    -- Deliver only to public addresses (set for URLs users give, such as a
    -- job's webhook, so they cannot reach the server's own network).
    public_only boolean not null default false,
    -- HTTP deliveries published and not yet delivered or dropped.
    pending bigint not null default 0,
    created_at timestamptz not null default now(),
    unique (topic_id, name)
);
-- Publishing to a tag topic looks up the subscriptions of the message's tags.
create index queue_subscriptions_tags on queue_subscriptions using gin (tags);

create sequence queue_topic_message_ids;
