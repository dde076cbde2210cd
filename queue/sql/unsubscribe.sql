-- Topics::unsubscribe: remove subscription $2 of topic $1. Subscriptions are
-- keyed by their topic's id, joined here by name so that a missing topic or
-- subscription alike deletes nothing, one round trip either way.
delete from queue_subscriptions s using queue_topics t
where s.topic_id = t.id and t.name = $1 and s.name = $2
