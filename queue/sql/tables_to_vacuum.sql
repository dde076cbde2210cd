-- Maintenance::vacuum: the churning tables with dead rows enough to be worth
-- a vacuum, judged from the statistics Postgres keeps whether or not
-- autovacuum runs. The threshold is relative (10% of live rows) so a huge
-- backlog is not vacuumed over a handful, with a floor so a small table is
-- not vacuumed every round.
select relname as "relname!" from pg_stat_user_tables
where relid in ('queue_messages'::regclass, 'queue_counters'::regclass)
  and n_dead_tup > greatest(1000, n_live_tup / 10)
