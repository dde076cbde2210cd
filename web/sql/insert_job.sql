-- A new job (web/ crate, http/jobs.rs). Only the token's hash is kept; the
-- expiry is computed by Postgres' clock, the one the sweeper compares with.
insert into jobs (id, token_hash, recipes, expires_at)
values ($1, $2, $3, now() + $4)
returning expires_at
