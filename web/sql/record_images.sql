-- Records a batch of uploaded images (web/ crate, uploads/record.rs): for
-- each job with room for all its images here ($7 at most), claims their
-- places, inserts the images ($1-$6, their headers $12-$15) and their
-- outputs ($8-$10), and announces the job on channel $11. Returns those
-- jobs; the others are left untouched. The job rows are locked in id order
-- before any is updated, so concurrent recorders cannot deadlock; the
-- inserts see `claimed`, and the foreign keys are checked at the
-- statement's end, when the images exist.
with wanted as (
    select w.job_id, w.n
    from (select job_id, count(*)::int4 as n
          from unnest($2::uuid[]) as i(job_id) group by job_id) as w
    join jobs j on j.id = w.job_id
    order by w.job_id
    for update of j
), claimed as (
    update jobs j set image_count = j.image_count + w.n
    from wanted w
    where j.id = w.job_id and j.image_count + w.n <= $7
    returning j.id
), images as (
    insert into images (id, job_id, name, bytes, content_type, storage_key,
                        width, height, bytes_per_pixel, scalable)
    select i.* from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::text[],
                           $6::text[], $12::int4[], $13::int4[], $14::int2[], $15::bool[])
        as i(id, job_id, name, bytes, content_type, storage_key,
             width, height, bytes_per_pixel, scalable)
    where i.job_id in (select id from claimed)
), outputs as (
    insert into outputs (image_id, recipe, job_id)
    select o.* from unnest($8::uuid[], $9::text[], $10::uuid[])
        as o(image_id, recipe, job_id)
    where o.job_id in (select id from claimed)
)
select c.id as "job!" from claimed c cross join lateral pg_notify($11, c.id::text)
