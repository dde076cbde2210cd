-- A page of a job's images with their outputs (web/ crate, http/status.rs):
-- images in upload order after image $2 (keyset paging on (created_at, id), so
-- pages stay stable while photos arrive), $3 of them (the caller asks one more
-- than it shows, to know whether another page follows), each joined to every
-- output it has.
with page as (
    select i.id, i.name, i.created_at from images i
    where i.job_id = $1
      and ($2::uuid is null
           or (i.created_at, i.id) > (select created_at, id from images
                                      where id = $2 and job_id = $1))
    order by i.created_at, i.id
    limit $3
)
select p.id as image_id, p.name, o.event as "event?", o.recipe as "recipe?",
       o.state as "state?: OutputState", o.width, o.height, o.bytes, o.format, o.error
from page p
left join outputs o on o.image_id = p.id
order by p.created_at, p.id, o.recipe
