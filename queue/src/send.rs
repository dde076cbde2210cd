//! Enqueueing messages.

use std::time::Duration;

use sqlx::PgConnection;

use crate::attributes::{MAX_DELAY, check_batch};
use crate::{Error, Queue, QueueKind, Result};

/// Most messages in one live row (see the migration). Small enough that a
/// row stays well under Postgres' 2 kB TOAST threshold, large enough that a
/// batch of 100 is one row.
pub(crate) const ROW_MESSAGES: i64 = 128;

/// A message to send.
#[derive(Clone, Debug, Default)]
pub struct NewMessage {
    pub body: String,
    /// Overrides the queue's delay.
    pub delay: Option<Duration>,
    /// Message group of an ordered queue (ignored by concurrent queues).
    pub group: Option<String>,
}

impl NewMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Default::default()
        }
    }
}

impl Queue {
    /// Sends one message and returns its id.
    pub async fn send(&self, body: impl Into<String>) -> Result<i64> {
        let ids = self.send_batch(&[NewMessage::new(body)]).await?;
        Ok(ids[0])
    }

    /// Sends up to 1000 messages atomically; ids are returned in message order.
    pub async fn send_batch(&self, messages: &[NewMessage]) -> Result<Vec<i64>> {
        let mut conn = self.pool.acquire().await?;
        let ids = self.send_batch_in(&mut conn, messages).await?;
        self.notify();
        Ok(ids)
    }

    /// Like [`Queue::send_batch`], on the caller's connection, so the messages
    /// are committed together with the caller's own rows. Call
    /// [`Queue::notify`] after committing to wake long-polling receivers at
    /// once (they otherwise notice within a second).
    pub async fn send_batch_in(
        &self,
        conn: &mut PgConnection,
        messages: &[NewMessage],
    ) -> Result<Vec<i64>> {
        check_batch("messages", messages.len())?;
        let limit = self.attributes().max_message_bytes as usize;
        let ordered = self.attributes().kind == QueueKind::Ordered;
        let mut bodies = Vec::with_capacity(messages.len());
        let mut groups = Vec::with_capacity(messages.len());
        let mut delays = Vec::with_capacity(messages.len());
        for m in messages {
            if m.body.len() > limit {
                return Err(Error::MessageTooLarge {
                    size: m.body.len(),
                    limit,
                });
            }
            let delay = m.delay.unwrap_or(self.attributes().delay);
            if delay > MAX_DELAY {
                return Err(Error::InvalidArgument {
                    field: "delay",
                    message: "must be between 0 and 3600 s".into(),
                });
            }
            bodies.push(m.body.as_str());
            groups.push(m.group.as_deref().unwrap_or(""));
            delays.push(delay.as_secs_f64());
        }
        // A batch crossing into an id range with no body partition yet fails
        // as a whole; make the partition and send again (rare: every 10M
        // sends).
        for attempt in 0.. {
            match self.insert(conn, ordered, &bodies, &groups, &delays).await {
                Err(sqlx::Error::Database(e))
                    if attempt == 0 && e.message().contains("no partition of relation") =>
                {
                    crate::maintenance::ensure_partitions(&self.pool).await?;
                }
                other => return Ok(other?),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn insert(
        &self,
        conn: &mut PgConnection,
        ordered: bool,
        bodies: &[&str],
        groups: &[&str],
        delays: &[f64],
    ) -> sqlx::Result<Vec<i64>> {
        // One statement writes each body once (kept for rewind), the live
        // rows (runs of up to ROW_MESSAGES messages sharing a delay, or one
        // row per message on ordered queues) and the counters. Ids are drawn
        // in message order from one value of the global sequence.
        let per_row = if ordered { 1 } else { ROW_MESSAGES };
        sqlx::query_scalar!(
            r#"
            with base as materialized (
                select nextval('queue_message_ids') as id
            ), src as materialized (
                select base.id + m.ord - 1 as id, m.body,
                       case when $5 then m.grp end as grp, m.delay
                from base,
                     unnest($2::text[], $3::text[], $4::float8[]) with ordinality
                         as m(body, grp, delay, ord)
            ), bodies as (
                insert into queue_bodies (id, queue_id, body, message_group)
                select id, $1, body, grp from src
            ), runs as (
                insert into queue_messages (queue_id, pos, ids, message_group, visible_at,
                                            enqueued_at)
                select $1, min(id), array_agg(id order by id), grp,
                       now() + make_interval(secs => delay), now()
                from (
                    select src.*,
                           (row_number() over (partition by grp, delay order by id) - 1) / $6
                               as run
                    from src
                ) s
                group by grp, delay, run
            ), counted as (
                insert into queue_counters as c (queue_id, bucket, slot, live, delayed)
                select $1, d.bucket, pg_backend_pid(), sum(d.live), sum(d.delayed)
                from src
                cross join lateral (values
                    (0::int8, 1, 0),
                    (case when src.delay > 0
                          then queue_bucket(now() + make_interval(secs => src.delay)) end, 0, 1)
                ) as d(bucket, live, delayed)
                where d.bucket is not null
                group by d.bucket
                order by d.bucket
                on conflict (queue_id, bucket, slot) do update set
                    live = c.live + excluded.live,
                    delayed = c.delayed + excluded.delayed
            )
            select id as "id!" from src order by id
            "#,
            self.id(),
            bodies as &[&str],
            groups as &[&str],
            delays,
            ordered,
            per_row,
        )
        .fetch_all(&mut *conn)
        .await
    }
}
