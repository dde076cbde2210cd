//! Rewind: deliver already deleted messages again, like resetting a Kafka
//! consumer offset or CMQ's RewindQueue.
//!
//! Bodies outlive deletes (see the migrations), so rewinding re-creates the
//! live rows of every message of this queue from the given point on that is
//! no longer live. They get fresh receive counts and come out in id order,
//! ahead of anything sent later.

use chrono::{DateTime, Utc};

use crate::attributes::millis;
use crate::send::ROW_MESSAGES;
use crate::{Error, Queue, QueueKind, Result};

/// Where to rewind to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewindTo {
    /// Every message enqueued at or after this time.
    Time(DateTime<Utc>),
    /// Every message with this id or a later one.
    Id(i64),
}

impl Queue {
    /// Makes deleted messages from `to` onwards (within the rewind window)
    /// visible again. Returns how many.
    pub async fn rewind(&self, to: RewindTo) -> Result<u64> {
        let window = millis(self.attributes().rewind_window);
        let (from_time, from_id) = match to {
            RewindTo::Time(t) => (Some(t), None),
            RewindTo::Id(id) => (None, Some(id)),
        };
        let oldest_allowed: DateTime<Utc> = sqlx::query_scalar!(
            r#"select now() - make_interval(secs => $1::float8 / 1000) as "t!""#,
            window as f64
        )
        .fetch_one(&self.pool)
        .await?;
        if let Some(t) = from_time
            && t < oldest_allowed
        {
            return Err(Error::InvalidArgument {
                field: "to_time",
                message: format!(
                    "is before the rewind window of this queue (oldest: {})",
                    oldest_allowed.to_rfc3339()
                ),
            });
        }
        let dlq = self.inner.dead_letter.map(|(id, _)| id);
        let per_row = match self.attributes().kind {
            QueueKind::Concurrent => ROW_MESSAGES,
            QueueKind::Ordered => 1,
        };
        // Serialised per queue: two rewinds at once would both restore the
        // same messages.
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "select pg_advisory_xact_lock(hashtext('queue_rewind'), $1)",
            self.id()
        )
        .execute(&mut *tx)
        .await?;
        // Restored messages form rows like sent ones: runs of messages sent
        // together (same enqueue time and group).
        let restored = sqlx::query_scalar!(
            r#"
            with live as (
                select x.id
                from queue_messages m
                cross join unnest(m.ids) as x(id)
                where m.queue_id = $1 or (m.queue_id = $5::int4 and m.dead_letter_source = $1)
            ), gone as (
                select c.id + k - 1 as id, c.groups[k] as message_group, c.enqueued_at
                from queue_chunks c
                cross join lateral generate_subscripts(c.bodies, 1) as k
                where c.queue_id = $1
                  and c.id >= queue_chunk_of(coalesce($2::int8, 0))
                  and c.enqueued_at >= greatest(coalesce($3::timestamptz, '-infinity'::timestamptz), $4)
                  and c.id + k - 1 >= coalesce($2::int8, 0)
                  and not exists (select 1 from live l where l.id = c.id + k - 1)
            ), restored as (
                insert into queue_messages (queue_id, pos, ids, message_group, visible_at,
                                            enqueued_at)
                select $1, min(id), array_agg(id order by id), message_group, now(), enqueued_at
                from (
                    select g.*,
                           (row_number() over (partition by enqueued_at, message_group order by id)
                               - 1) / $6 as run
                    from gone g
                ) r
                group by enqueued_at, message_group, run
                returning cardinality(ids) as n
            ), counted as (
                insert into queue_counters as c (queue_id, bucket, slot, live)
                select $1, 0, pg_backend_pid(), sum(n) from restored having sum(n) > 0
                on conflict (queue_id, bucket, slot) do update set live = c.live + excluded.live
            )
            select coalesce(sum(n), 0)::int8 as "restored!" from restored
            "#,
            self.id(),
            from_id,
            from_time,
            oldest_allowed,
            dlq,
            per_row,
        )
        .fetch_one(&mut *tx)
        .await? as u64;
        tx.commit().await?;
        if restored > 0 {
            self.notify();
        }
        Ok(restored)
    }
}
