-- What the SQS endpoint (queue/src/sqs/) keeps beside the queues. Both tables
-- live in the control database, which names every queue whatever its shards.

-- SQS attributes with no native counterpart (MaximumMessageSize,
-- ContentBasedDeduplication, Policy, ...), as SQS spells them, and tags.
-- A queue without a row has SQS's defaults: queues made by other means are
-- reachable over SQS too.
create table queue_sqs_queues (
    queue text primary key,
    attributes jsonb not null default '{}',
    tags jsonb not null default '{}'
);

-- FIFO deduplication: a deduplication id seen within the last five minutes
-- names the message its first send made, which later sends return instead of
-- sending again. `message` is null while that first send is under way.
create table queue_sqs_dedup (
    queue text not null,
    dedup_id text not null,
    message text,
    sequence_number text,
    expires_at timestamptz not null,
    primary key (queue, dedup_id)
);
create index queue_sqs_dedup_expires on queue_sqs_dedup (expires_at);
