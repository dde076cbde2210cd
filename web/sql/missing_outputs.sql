-- The images of job $1, oldest first, with those of the recipes named $2
-- each has no output of; images with all of them are left out.
select i.id, i.name, i.storage_key, i.content_type,
       i.width, i.height, i.bytes_per_pixel, i.scalable,
       m.missing as "missing!"
from images i
cross join lateral (
    select array_agg(r.name order by r.ord) as missing
    from unnest($2::text[]) with ordinality as r(name, ord)
    where not exists (select 1 from outputs o where o.image_id = i.id and o.recipe = r.name)
) m
where i.job_id = $1 and m.missing is not null
order by i.created_at, i.id
