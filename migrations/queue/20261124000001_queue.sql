-- The message queue (queue/ crate). Durations are stored in milliseconds.
--
-- A message is split in two:
-- * queue_bodies: what was sent, one row per message, written once and never
--   updated; kept after delete so a queue can be rewound, and dropped a whole
--   partition at a time.
-- * queue_messages: the live state (visibility, lease, counts) of a *run* of
--   messages that share it: the messages of one send batch start as one row
--   (up to 128 of them; one per row on ordered queues), a receive leases whole
--   rows, splitting off what it does not take, and a batch delete removes a
--   row at once. Per message this is a fraction of the row writes of one row
--   per message, which is where a Postgres queue spends its time.

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

-- Message ids are global, so a message keeps its id when it moves to a dead
-- letter queue and back; within one queue they increase. Each send takes one
-- value and numbers its messages from it (a batch holds at most 1000), so
-- the ids of a batch are consecutive and never interleave with another
-- batch's, and one sequence call serves a whole batch.
create sequence queue_message_ids as bigint increment by 1000 minvalue 1000 start with 1000;

create table queue_bodies (
    id             bigint not null primary key,
    queue_id       integer not null,
    body           text not null,
    message_group  text,
    enqueued_at    timestamptz not null default now()
) partition by range (id);

-- Live rows have ids of their own, which never change: a receipt names the
-- row its message was received in, and every lookup is by id.
create sequence queue_row_ids as bigint;

create table queue_messages (
    id                  bigint not null primary key default nextval('queue_row_ids'),
    -- No foreign key: its per-row check would take a KEY SHARE lock on the
    -- queue's row for every send. Queues::delete removes messages.
    queue_id            integer not null,
    -- The row's place in its queue: its lowest message id when it was made.
    pos                 bigint not null,
    -- The messages of this row, ascending; never empty.
    ids                 bigint[] not null check (cardinality(ids) > 0),
    -- For a message a visibility change moved out of its row: that row,
    -- which its receipt still names.
    origin              bigint,
    -- Set on ordered queues only ('' when the sender named no group).
    message_group       text,
    visible_at          timestamptz not null,
    -- Token of the current lease; a receipt is (message id, row id, lease).
    lease               uuid,
    receive_count       integer not null default 0,
    enqueued_at         timestamptz not null,
    first_received_at   timestamptz,
    -- The queue a dead-lettered message came from.
    dead_letter_source  integer
) with (fillfactor = 70);

-- Receives walk a queue's rows in order.
create index queue_messages_queue on queue_messages (queue_id, pos);

-- Finds the head of each group of an ordered queue.
create index queue_messages_groups on queue_messages (queue_id, message_group, pos)
    where message_group is not null;

-- Finds messages moved out of the row their receipt names (rare).
create index queue_messages_origin on queue_messages (origin) where origin is not null;

-- Counts behind Queue::stats, kept up to date by every statement that
-- changes them (in a CTE of its own, next to the change), so that stats cost
-- the same on an empty queue and on one with a backlog of hundreds of
-- millions. Bucket 0 holds totals: `live` messages of the queue, and
-- `dead_lettered`, messages it sent to its dead letter queue that are still
-- there. Bucket t > 0 holds the messages that become visible during second t
-- (epoch, see queue_bucket): `leased` ones are in flight, the others
-- `delayed`; a bucket counts until its second has passed, so expiry needs no
-- write at all, and a bucket miscounted by a race mends itself once its
-- second has passed. Each backend adds to rows of its own `slot` (its pid),
-- so concurrent statements never wait on one row; maintenance folds the
-- rows of gone backends into slot 0.
create table queue_counters (
    queue_id       integer not null,
    bucket         bigint not null,
    slot           integer not null,
    live           bigint not null default 0,
    leased         bigint not null default 0,
    delayed        bigint not null default 0,
    dead_lettered  bigint not null default 0,
    primary key (queue_id, bucket, slot)
) with (fillfactor = 50);

create function queue_bucket(t timestamptz) returns bigint
language sql stable parallel safe
return floor(extract(epoch from t))::bigint;

-- Partitions of queue_bodies cover fixed ranges of ids: 10^10, the ids of
-- ten million sends, however many messages each held. This keeps the
-- partitions for the ids about to be used in place; senders call it when an
-- insert finds no partition, maintenance calls it ahead of time.
create function queue_ensure_partitions(width bigint default 10000000000, ahead integer default 2)
returns integer
language plpgsql as $$
declare
    current bigint;
    first_lo bigint;
    lo bigint;
    made integer := 0;
begin
    perform pg_advisory_xact_lock(hashtext('queue_ensure_partitions'));
    select case when is_called then last_value else 0 end into current from queue_message_ids;
    first_lo := (current / width) * width;
    for i in 0..ahead loop
        lo := first_lo + i * width;
        if to_regclass(format('queue_bodies_p%s', lo / width)) is null then
            execute format(
                'create table %I partition of queue_bodies for values from (%s) to (%s)',
                format('queue_bodies_p%s', lo / width), lo, lo + width);
            execute format(
                'alter table %I set (autovacuum_enabled = false)', format('queue_bodies_p%s', lo / width));
            made := made + 1;
        end if;
    end loop;
    return made;
end $$;

-- Drops body partitions that no live message refers to and whose newest
-- message is older than `keep`: retention in bulk, never row by row.
create function queue_drop_expired_partitions(keep interval)
returns integer
language plpgsql as $$
declare
    part record;
    lo bigint;
    hi bigint;
    min_live bigint;
    newest timestamptz;
    dropped integer := 0;
begin
    select min(m.id) into min_live
    from queue_queues q
    cross join lateral (
        select pos as id from queue_messages where queue_id = q.id order by pos limit 1
    ) m;
    for part in
        select c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''?(\d+)''?\) TO \(''?(\d+)''?\)')) as b
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'queue_bodies'::regclass
    loop
        lo := part.b[1]::bigint;
        hi := part.b[2]::bigint;
        continue when min_live is not null and hi > min_live;
        select enqueued_at into newest from queue_bodies
            where id >= lo and id < hi order by id desc limit 1;
        continue when newest is null and hi > (select last_value from queue_message_ids);
        continue when newest is not null and newest >= now() - keep;
        execute format('drop table %I', part.relname);
        dropped := dropped + 1;
    end loop;
    return dropped;
end $$;

select queue_ensure_partitions();
