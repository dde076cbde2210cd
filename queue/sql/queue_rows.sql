-- Queues::rows: the queue named $1, or every queue when $1 is null, so that
-- opening one queue and listing them all read the same columns. The dead
-- letter queue's id is joined in here, once per handle, so that receives
-- never look it up; a left join keeps queues without one.
select q.id, q.name, q.kind, q.visibility_timeout_ms, q.max_receive_count,
       q.dead_letter_queue, d.id as "dead_letter_id?", q.retention_ms,
       q.rewind_window_ms, q.delay_ms, q.max_message_bytes, q.polling_wait_ms
from queue_queues q
left join queue_queues d on d.name = q.dead_letter_queue
where q.name = $1 or $1 is null
order by q.name
