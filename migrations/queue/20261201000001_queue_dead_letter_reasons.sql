-- Retention may be unset: such a queue keeps every message until it is
-- deleted.
alter table queue_queues alter column retention_ms drop not null;

-- Why a message is in a dead letter queue: it was received too often without
-- being deleted ('max_receives'), or its queue's retention ran out first
-- ('expired'): a queue with a dead letter queue moves its expired messages
-- there instead of dropping them, so nothing unprocessed is lost unseen.
alter table queue_messages add column dead_letter_reason text
    check (dead_letter_reason in ('max_receives', 'expired'));
update queue_messages set dead_letter_reason = 'max_receives'
where dead_letter_source is not null;
