-- Up to $1 expired jobs, oldest first, locked (web/ crate, expiry.rs). SKIP
-- LOCKED lets several web instances sweep at once without waiting on each
-- other's rows.
select id from jobs where expires_at <= now()
order by expires_at
limit $1
for update skip locked
