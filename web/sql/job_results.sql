-- Every done result of job $1 for its zip (web/ crate, http/downloads.rs), in
-- upload order then recipe, so a zip lists files as the page does. Before-
-- previews (recipe $2) are not results.
select i.name, o.recipe, o.format as "format!", o.storage_key as "storage_key!"
from outputs o join images i on i.id = o.image_id
where o.job_id = $1 and o.state = 'done' and o.recipe <> $2
  and o.format is not null and o.storage_key is not null
order by i.created_at, i.id, o.recipe
