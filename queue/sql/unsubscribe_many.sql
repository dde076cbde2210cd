-- Topics::unsubscribe_in: remove those of the subscriptions named in $2 that
-- belong to topic $1, all in one statement on the caller's connection;
-- names that are not subscriptions of the topic are skipped, not errors.
delete from queue_subscriptions s using queue_topics t
where s.topic_id = t.id and t.name = $1 and s.name = any($2)
