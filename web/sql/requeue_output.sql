-- A failed output back in the queue's hands (web/ crate, http/retry.rs):
-- queued, its error gone, and a new event number so progress streams send the
-- change.
update outputs
set state = 'queued', error = null, updated_at = now(), event = nextval('output_events')
where job_id = $1 and image_id = $2 and recipe = $3
