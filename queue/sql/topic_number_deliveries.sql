-- Topics::number_deliveries: count $2[i] more deliveries pending and
-- published for subscription $1[i], all in one statement, and return each
-- subscription's published count before them, from which its deliveries
-- are numbered. An unsubscribed id returns no row.
update queue_subscriptions s
set pending = s.pending + p.n, published = s.published + p.n
from unnest($1::int4[], $2::int8[]) as p(id, n)
where s.id = p.id
returning s.id, s.published - p.n
