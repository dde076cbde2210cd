-- sqs::fifo::claim: what the earlier sends of deduplication ids $2 of queue
-- $1 became. `message` is null while such a send is still under way, so the
-- caller reads again until every one is recorded.
select dedup_id, message, sequence_number from queue_sqs_dedup
where queue = $1 and dedup_id = any($2)
