-- A subscription's HTTP deliveries are numbered as they are published, so
-- that a pusher can tell one with a cap's worth of newer deliveries behind
-- it: such a delivery is dropped rather than retried (an endpoint that
-- never answers must not grow the delivery queue without end), and counted
-- in `dropped` so that nobody loses events unseen.
alter table queue_subscriptions
    add column published bigint not null default 0,
    add column dropped bigint not null default 0;
