-- Where queues live when one Postgres is not enough. These tables are read
-- in the control database only (the one a router is given); every database
-- carries them so that any may be made the control one.
--
-- Shard 0 is the control database itself: a queue with no placement lives
-- there, as every queue did before shards, so one-database setups see no
-- change.
create table queue_shards (
    id int primary key,
    name text not null unique,
    -- null for shard 0, the control database.
    url text unique,
    added_at timestamptz not null default now(),
    check ((id = 0) = (url is null))
);

insert into queue_shards (id, name, url) values (0, 'control', null);

-- The shards a queue lives on. `active` parts take sends; `draining` parts
-- (left by a move or a re-spread) are still received from until they are
-- empty, then become `retired`: kept, so that a rewind can bring their
-- history back (which makes them draining again).
create table queue_placements (
    queue text not null,
    shard_id int not null references queue_shards (id),
    state text not null check (state in ('active', 'draining', 'retired')),
    since timestamptz not null default now(),
    primary key (queue, shard_id)
);
