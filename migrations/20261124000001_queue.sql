-- The message queue (queue/ crate). Durations are stored in milliseconds.
create table queue_queues (
    id                     integer generated always as identity primary key,
    name                   text not null unique
                           check (name ~ '^[A-Za-z0-9_.-]{1,80}$'),
    kind                   text not null default 'concurrent'
                           check (kind in ('concurrent', 'ordered')),
    visibility_timeout_ms  bigint not null default 30000,
    max_receive_count      integer,
    dead_letter_queue      text,
    retention_ms           bigint not null default 345600000,
    rewind_window_ms       bigint not null default 86400000,
    delay_ms               bigint not null default 0,
    max_message_bytes      integer not null default 1048576,
    polling_wait_ms        bigint not null default 0,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now()
);

create sequence queue_message_ids as bigint;

-- One row per live message. Rows are updated in place on every receive, so
-- leave room on each page for HOT updates.
create table queue_messages (
    queue_id           integer not null references queue_queues (id) on delete cascade,
    id                 bigint not null default nextval('queue_message_ids'),
    body               text not null,
    message_group      text,
    visible_at         timestamptz not null,
    -- Token of the current lease; a receipt is (id, lease).
    lease              uuid,
    receive_count      integer not null default 0,
    enqueued_at        timestamptz not null default now(),
    first_received_at  timestamptz,
    primary key (queue_id, id)
) with (fillfactor = 70);

alter sequence queue_message_ids owned by queue_messages.id;
