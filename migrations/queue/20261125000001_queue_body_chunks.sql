-- Bodies are stored a *chunk* at a time: up to 128 consecutive messages of
-- one send in one row, instead of one row per message.
--
-- A body row per message cost a heap tuple and a primary key entry each, and
-- writing them was most of a batch send's time; a receive then probed the
-- index once per message. A chunk is one tuple and one key for up to 128
-- bodies (Postgres moves its array out of line in ~2 kB pieces, compressed
-- with lz4 when that pays), read back with one probe and one detoast. 128 is
-- the live-row size as well, so a receive of a whole run reads one chunk, and
-- a receive of a single message never detoasts more than 128 bodies.
--
-- Ids make the chunk of a message arithmetic: a send numbers its messages
-- from one value of queue_message_ids (a multiple of 1000) and cuts them into
-- chunks of 128 from there, so message x is element
-- x - queue_chunk_of(x) + 1 of chunk queue_chunk_of(x).

create table queue_chunks (
    -- The id of the chunk's first message.
    id           bigint not null primary key,
    queue_id     integer not null,
    bodies       text[] compression lz4 not null,
    -- Ordered queues only: the group of each message ('' for none).
    groups       text[],
    enqueued_at  timestamptz not null default now()
) partition by range (id);

create function queue_chunk_of(message_id bigint) returns bigint
language sql immutable parallel safe
return message_id - (message_id % 1000) % 128;

-- The bodies of `ids`: one primary-key probe and one detoast per chunk, not
-- per message. Plain SQL, so Postgres inlines it into the receive that calls
-- it and plans it with the rest; the probe is a scalar subquery so that it is
-- a lookup by key (pruned to one partition at run time) whatever the planner
-- believes about the table's size.
create function queue_bodies_of(ids bigint[]) returns table (id bigint, body text)
language sql stable parallel safe
as $$
    select x.id, u.body
    from (select queue_chunk_of(y) as id from unnest(ids) as y group by 1) as c
    cross join lateral unnest((select bodies from queue_chunks where queue_chunks.id = c.id))
        with ordinality as u(body, ord)
    join unnest(ids) as x(id) on x.id = c.id + u.ord - 1
$$;

-- As before, partitions cover 10^10 ids (ten million sends), are made ahead
-- of use and dropped whole; they are append-only, so autovacuum skips them.
create or replace function queue_ensure_partitions(width bigint default 10000000000, ahead integer default 2)
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
        made := made + queue_make_chunk_partition(lo, width);
    end loop;
    return made;
end $$;

create function queue_make_chunk_partition(lo bigint, width bigint) returns integer
language plpgsql as $$
declare
    name text := format('queue_chunks_p%s', lo / width);
begin
    if to_regclass(name) is not null then
        return 0;
    end if;
    execute format('create table %I partition of queue_chunks for values from (%s) to (%s)',
                   name, lo, lo + width);
    execute format('alter table %I set (autovacuum_enabled = false)', name);
    return 1;
end $$;

-- The partitions of `parent` with the ids they hold, [lo, hi).
create function queue_partitions(parent regclass)
returns table (relname name, lo bigint, hi bigint)
language sql stable
as $$
    select c.relname, b[1]::bigint, b[2]::bigint
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    cross join lateral regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                    'FROM \(''?(\d+)''?\) TO \(''?(\d+)''?\)') as b
    where i.inhparent = parent
$$;

-- Drops chunk partitions that no live message refers to and whose newest
-- message is older than `keep`: retention in bulk, never row by row.
create or replace function queue_drop_expired_partitions(keep interval)
returns integer
language plpgsql as $$
declare
    part record;
    min_live bigint;
    newest timestamptz;
    dropped integer := 0;
begin
    select min(m.id) into min_live
    from queue_queues q
    cross join lateral (
        select pos as id from queue_messages where queue_id = q.id order by pos limit 1
    ) m;
    for part in select * from queue_partitions('queue_chunks') loop
        continue when min_live is not null and part.hi > min_live;
        select enqueued_at into newest from queue_chunks
            where id >= part.lo and id < part.hi order by id desc limit 1;
        continue when newest is null and part.hi > (select last_value from queue_message_ids);
        continue when newest is not null and newest >= now() - keep;
        execute format('drop table %I', part.relname);
        dropped := dropped + 1;
    end loop;
    return dropped;
end $$;

-- Existing bodies move into chunks, in partitions covering the same ids.
select queue_make_chunk_partition(lo, hi - lo) from queue_partitions('queue_bodies');

insert into queue_chunks (id, queue_id, bodies, groups, enqueued_at)
select queue_chunk_of(min(id)), queue_id, array_agg(body order by id),
       case when bool_or(message_group is not null)
            then array_agg(coalesce(message_group, '') order by id) end,
       min(enqueued_at)
from queue_bodies
group by queue_chunk_of(id), queue_id;

drop table queue_bodies;

-- A cached plan is made for the table as it is at the time. Vacuumed down to
-- nothing (a drained queue), the live-state table looks empty, lookups by id
-- get planned as scans of the whole table, and those plans stay while a
-- burst of sends fills it again. Keeping the pages it has grown to (they are
-- reused) keeps the planner on the indexes.
alter table queue_messages set (vacuum_truncate = false);

select queue_ensure_partitions();
