-- Of the outputs a batch's done responses name but did not apply to, those
-- that no longer exist (web/ crate, consumer/mod.rs): their job expired and
-- was swept while the worker ran, so their results in storage belong to no one
-- and are deleted. $1, $2: the outputs' image ids and recipes, in pairs.
select r.image_id as "image_id!", r.recipe as "recipe!"
from unnest($1::uuid[], $2::text[]) as r(image_id, recipe)
where not exists (
    select 1 from outputs o where o.image_id = r.image_id and o.recipe = r.recipe
)
