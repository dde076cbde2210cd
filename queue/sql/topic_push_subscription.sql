-- Subscription::read, for Pusher::deliver: a delivery's subscription with its
-- topic's name and message lifetime, read afresh for every delivery so that
-- a changed or removed subscription takes effect on its next delivery.
select s.name, s.endpoint, s.retry, s.retry_interval_ms, s.format, s.secret,
       s.public_only, s.published, t.name as topic, t.message_lifetime_ms
from queue_subscriptions s join queue_topics t on t.id = s.topic_id
where s.id = $1
