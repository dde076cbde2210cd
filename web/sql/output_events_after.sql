-- A job's output changes after event number $2, in the order they happened
-- (web/ crate, http/events.rs): what a progress stream sends next. At most
-- 1000 a round keeps each round's reply small; the rest follow on the stream's
-- next round.
select o.image_id, i.name, o.event as "event?", o.recipe as "recipe?",
       o.state as "state?: OutputState", o.width, o.height, o.bytes, o.format, o.error
from outputs o join images i on i.id = o.image_id
where o.job_id = $1 and o.event > $2
order by o.event
limit 1000
