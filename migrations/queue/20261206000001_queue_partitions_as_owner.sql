-- A sender whose role may not change the schema (a worker given a role of its
-- own) still makes the partitions its sends need: the function runs as its
-- owner, the role that applied the migrations. Its search path is fixed to
-- the queue's schema, with pg_temp last, so a caller's objects cannot stand
-- in for the queue's tables while it runs with the owner's rights.
do $$
begin
    execute format(
        'alter function queue_ensure_partitions(bigint, integer) security definer '
        'set search_path = %I, pg_temp',
        current_schema());
end
$$;
