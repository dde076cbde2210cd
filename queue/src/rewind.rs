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
        let restored = sqlx::query_file_scalar!(
            "sql/rewind.sql",
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
