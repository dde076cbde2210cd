-- Jobs expire (web/ crate): a sweeper deletes a job, its rows and its S3
-- objects once `expires_at` has passed (DARKROOM_JOB_TTL after creation).
-- `image_count` lets an upload check the job's image quota and claim a place
-- in one row update, without counting its images.
alter table jobs add column expires_at timestamptz;
alter table jobs add column image_count integer not null default 0;
update jobs set expires_at = created_at + interval '7 days',
                image_count = (select count(*) from images i where i.job_id = jobs.id);
alter table jobs alter column expires_at set not null;
create index jobs_expires_at on jobs (expires_at);
