//! Rewind: deliver already deleted messages again, like resetting a Kafka
//! consumer offset or CMQ's RewindQueue.
//!
//! Bodies outlive deletes (see the migration), so rewinding re-creates the
//! live rows of every message of this queue from the given point on that is
//! no longer live. They get fresh receive counts and come out in id order,
//! ahead of anything sent later.

use chrono::{DateTime, Utc};

use crate::attributes::millis;
use crate::{Error, Queue, Result};

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
        let restored = sqlx::query!(
            r#"
            insert into queue_messages (queue_id, id, message_group, visible_at, enqueued_at)
            select $1, b.id, b.message_group, now(), b.enqueued_at
            from queue_bodies b
            where b.queue_id = $1
              and b.id >= coalesce($2::int8, 0)
              and b.enqueued_at >= greatest(coalesce($3::timestamptz, '-infinity'::timestamptz), $4)
              and not exists (
                  select 1 from queue_messages m
                  where m.id = b.id and (m.queue_id = $1 or m.queue_id = $5::int4)
              )
            order by b.id
            on conflict do nothing
            "#,
            self.id(),
            from_id,
            from_time,
            oldest_allowed,
            dlq,
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        if restored > 0 {
            self.notify();
        }
        Ok(restored)
    }
}
