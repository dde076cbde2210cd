-- sqs::fifo::record: record which message and sequence number each won
-- claim of queue $1 became, all in one statement: $2, $3 and $4 are
-- parallel arrays of deduplication ids, message ids and sequence numbers.
update queue_sqs_dedup d set message = m.message, sequence_number = m.seq
from unnest($2::text[], $3::text[], $4::text[]) as m(dedup_id, message, seq)
where d.queue = $1 and d.dedup_id = m.dedup_id
