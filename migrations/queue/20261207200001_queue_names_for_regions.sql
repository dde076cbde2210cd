-- The SQS endpoint keeps a queue of another region than its own under
-- that region's name (`us-west-2.orders`), and an SQS name may be 80
-- characters long before it: queue names may be up to 128.
alter table queue_queues drop constraint queue_queues_name_check;
alter table queue_queues
    add constraint queue_queues_name_check check (name ~ '^[A-Za-z0-9_.-]{1,128}$');
