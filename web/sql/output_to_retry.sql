-- The output ($2, $3) of job $1, locked, with its image and the job's
-- recipes: what queuing it again needs.
select o.state as "state: common::OutputState", i.name, i.storage_key, i.content_type,
       i.width, i.height, i.bytes_per_pixel, i.scalable, j.recipes
from outputs o
join images i on i.id = o.image_id
join jobs j on j.id = o.job_id
where o.job_id = $1 and o.image_id = $2 and o.recipe = $3
for update of o
