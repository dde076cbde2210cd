-- One done result (web/ crate, http/downloads.rs): job $1's image $2 under
-- recipe $3. The job id is checked too, so a token of one job never opens
-- another's result.
select o.storage_key as "storage_key!", o.format as "format!", o.bytes as "bytes!", i.name
from outputs o join images i on i.id = o.image_id
where o.job_id = $1 and o.image_id = $2 and o.recipe = $3 and o.state = 'done'
  and o.storage_key is not null and o.format is not null and o.bytes is not null
