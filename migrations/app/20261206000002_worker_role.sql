-- What a worker uses, for deployments that give workers a Postgres role of
-- their own (DARKROOM_WORKER_DB_ROLE): the schema's version, the queues'
-- names and routes, and leasing, deleting and sending messages. Not the jobs,
-- images and outputs, nor the queues' settings, shards, SQS keys or topics:
-- a worker taken over by a crafted image reaches no user's data through
-- Postgres. The web server calls this after migrating; a later migration that
-- changes what workers use replaces it.
create function darkroom_grant_worker(worker text) returns void
language plpgsql as $$
begin
    execute format('grant usage on schema %I to %I', current_schema(), worker);
    execute format('grant select on _sqlx_migrations, queue_queues, queue_shards, '
                   'queue_placements to %I', worker);
    execute format('grant select, insert, update, delete on queue_messages, queue_chunks to %I',
                   worker);
    execute format('grant insert on queue_counter_changes to %I', worker);
    execute format('grant usage on sequence queue_message_ids, queue_row_ids to %I', worker);
end
$$;
