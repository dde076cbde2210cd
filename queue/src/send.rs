//! Enqueueing messages.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgConnection;

use crate::attributes::{MAX_DELAY, check_batch};
use crate::{Error, Queue, QueueKind, Result};

/// Most messages in one live row, and in one chunk of bodies (see the
/// migrations; `queue_chunk_of` has it too). Small enough that a live row
/// stays well under Postgres' 2 kB TOAST threshold and that receiving one
/// message never detoasts many bodies, large enough that a batch of 100 is
/// one row and one chunk.
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
        let runs = runs(ordered, groups, delays);
        // One statement writes the bodies once, in chunks (kept for rewind),
        // the live rows and the counters. Ids are drawn in message order
        // from one value of the global sequence, so only that value comes
        // back.
        let first = sqlx::query_scalar!(
            r#"
            with base as materialized (
                select nextval('queue_message_ids') as id
            ), src as materialized (
                select base.id + m.ord - 1 as id, m.grp, m.delay, m.run
                from base,
                     unnest($3::text[], $4::float8[], $5::int4[]) with ordinality
                         as m(grp, delay, run, ord)
            ), chunks as (
                insert into queue_chunks (id, queue_id, bodies, groups)
                select base.id + k * $6, $1, $2[k * $6 + 1 : (k + 1) * $6],
                       case when $7 then $3[k * $6 + 1 : (k + 1) * $6] end
                from base, generate_series(0, (cardinality($2::text[]) - 1) / $6) as k
            ), runs as (
                insert into queue_messages (queue_id, pos, ids, message_group, visible_at,
                                            enqueued_at)
                select $1, min(id), array_agg(id order by id),
                       case when $7 then min(grp) end,
                       now() + make_interval(secs => min(delay)), now()
                from src
                group by run
            ), counted as (
                insert into queue_counters as c (queue_id, bucket, slot, live, delayed)
                select $1, d.bucket, pg_backend_pid(), sum(d.live), sum(d.delayed)
                from (
                    select 0::int8, count(*), 0::int8 from src
                    union all
                    select queue_bucket(now() + make_interval(secs => delay)), 0, count(*)
                    from src where delay > 0
                    group by 1
                ) as d(bucket, live, delayed)
                group by d.bucket
                order by d.bucket
                on conflict (queue_id, bucket, slot) do update set
                    live = c.live + excluded.live,
                    delayed = c.delayed + excluded.delayed
            )
            select id as "id!" from base
            "#,
            self.id(),
            bodies as &[&str],
            groups as &[&str],
            delays,
            &runs,
            ROW_MESSAGES as i32,
            ordered,
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok((first..first + bodies.len() as i64).collect())
    }
}

/// The live row of each message: runs of up to [`ROW_MESSAGES`] messages
/// that share a delay, in send order (one message per row on ordered
/// queues). Cut here rather than in SQL, where it took a window
/// function, two sorts and a grouping per send.
fn runs(ordered: bool, groups: &[&str], delays: &[f64]) -> Vec<i32> {
    if ordered {
        return (1..=groups.len() as i32).collect();
    }
    // Groups mean nothing on a concurrent queue: runs follow the delay.
    let mut open: HashMap<u64, (i32, i64)> = HashMap::new();
    let mut next = 0;
    delays
        .iter()
        .map(|delay| {
            let (run, len) = open.entry(delay.to_bits()).or_insert((next, 0));
            if *len == ROW_MESSAGES {
                *len = 0;
            }
            if *len == 0 {
                next += 1;
                *run = next;
            }
            *len += 1;
            *run
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_follow_delay_and_size() {
        let n = ROW_MESSAGES as usize + 2;
        let groups = vec![""; n];
        let mut delays = vec![0.0; n];
        delays[1] = 5.0;
        let runs = runs(false, &groups, &delays);
        // The delayed message has a row of its own; the others fill one row
        // to ROW_MESSAGES and start the next.
        assert_eq!(runs[0], 1);
        assert_eq!(runs[1], 2);
        assert!(runs[2..=ROW_MESSAGES as usize].iter().all(|&r| r == 1));
        assert_eq!(runs[n - 1], 3);
    }

    #[test]
    fn ordered_queue_rows_hold_one_message() {
        assert_eq!(runs(true, &["a", "a", "b"], &[0.0; 3]), vec![1, 2, 3]);
    }
}
