-- The output rows of recipes added to job $3 (web/ crate, http/recipes.rs),
-- one per (image $1, recipe $2) pair. An output a concurrent upload or call
-- made already is left as it is: adding recipes is idempotent.
insert into outputs (image_id, recipe, job_id)
select o.image_id, o.recipe, $3 from unnest($1::uuid[], $2::text[]) as o(image_id, recipe)
on conflict do nothing
