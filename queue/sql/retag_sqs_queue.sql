-- ExtraCache::retag: set tags $2 (a JSON object) and remove tag keys $3 of
-- queue $1. A queue without a row has no tags, so the first retag inserts.
-- Removals apply before the merge, so a key both set and removed ends up set.
insert into queue_sqs_queues (queue, tags) values ($1, $2)
on conflict (queue) do update
    set tags = (queue_sqs_queues.tags - $3::text[]) || excluded.tags
