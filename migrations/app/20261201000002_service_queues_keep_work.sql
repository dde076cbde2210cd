-- Darkroom's own queues (web/ and worker/ crates) keep unprocessed requests,
-- responses and dead letters until they are handled: the retention of 4 days
-- they were created with would have dropped a backlog silently. New
-- deployments declare them this way; this mends existing ones.
update queue_queues set retention_ms = null
where name in ('darkroom.requests', 'darkroom.requests.dead', 'darkroom.responses');
