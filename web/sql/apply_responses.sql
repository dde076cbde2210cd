-- Applies a batch of worker responses to their output rows (web/ crate,
-- consumer/apply.rs), one array per column ($1-$11). A row moves only up the
-- ladder queued < processing < failed < done ($5: the states it may move
-- from), so a response applied twice or out of order changes nothing. Each
-- change takes a new event number, for the progress streams; the seconds
-- since the image's upload feed the metrics.
update outputs o
set state = r.state, width = r.width, height = r.height, bytes = r.bytes,
    format = r.format, storage_key = r.key, error = r.error, updated_at = now(),
    event = nextval('output_events')
from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int4[],
            $7::int4[], $8::int8[], $9::text[], $10::text[], $11::text[])
     as r(job_id, image_id, recipe, state, below, width, height, bytes, format, key,
          error)
where o.image_id = r.image_id and o.recipe = r.recipe and o.job_id = r.job_id
  and o.state = any(string_to_array(r.below, ','))
returning o.job_id, o.image_id, o.recipe, o.state as "state: OutputState",
          extract(epoch from now() - (
              select created_at from images where id = o.image_id
          ))::float8 as "seconds!"

