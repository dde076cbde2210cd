-- Router::add_shard: list shard $1 at url $2 with the next free id. Ids are
-- small and dense because a receipt carries one. Two shards added at once
-- may pick the same id; the primary key refuses the second, as the unique
-- name and url refuse a shard listed twice.
insert into queue_shards (id, name, url)
select coalesce(max(id), 0) + 1, $1, $2 from queue_shards
returning id
