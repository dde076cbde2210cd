-- Of jobs $1, those whose every output is final (web/ crate, webhooks.rs),
-- with how many are done and failed: their job.done event goes out in the
-- transaction that made the last one final. Before-previews (recipe $2) are no
-- outputs of the job's recipes and are left out.
select job_id as "job!",
       count(*) filter (where state = 'done') as "done!",
       count(*) filter (where state = 'failed') as "failed!"
from outputs where job_id = any($1) and recipe <> $2
group by job_id
having bool_and(state in ('done', 'failed'))
