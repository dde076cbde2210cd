-- ExtraCache::store: merge attributes $2 (a JSON object) into queue $1's
-- stored ones. A queue without a row has the defaults, so the first store
-- inserts; later ones merge, and stripping nulls after the merge is what
-- lets a null in $2 remove an attribute.
insert into queue_sqs_queues (queue, attributes) values ($1, $2)
on conflict (queue) do update
    set attributes = jsonb_strip_nulls(queue_sqs_queues.attributes || excluded.attributes)
