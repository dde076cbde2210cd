//! Queue depth figures.

use std::time::Duration;

use serde::Serialize;

use crate::{Queue, Result};

/// How many messages are in which state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Ready to be received now.
    pub visible: i64,
    /// Leased by a receiver.
    pub in_flight: i64,
    /// Sent with a delay that has not elapsed.
    pub delayed: i64,
    /// Age of the oldest message not yet deleted, in seconds.
    #[serde(serialize_with = "as_seconds")]
    pub oldest_age: Duration,
    /// Messages of this queue now in its dead letter queue.
    pub dead_lettered: i64,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Queue {
    pub async fn stats(&self) -> Result<Stats> {
        let dlq = self.inner.dead_letter.map(|(id, _)| id);
        let row = sqlx::query!(
            r#"
            select
                count(*) filter (where visible_at <= now()) as "visible!",
                count(*) filter (where visible_at > now() and lease is not null) as "in_flight!",
                count(*) filter (where visible_at > now() and lease is null) as "delayed!",
                coalesce(extract(epoch from now() - min(enqueued_at)), 0)::float8 as "oldest_age!",
                (select count(*) from queue_messages
                 where queue_id = $2 and dead_letter_source = $1) as "dead_lettered!"
            from queue_messages where queue_id = $1
            "#,
            self.id(),
            dlq,
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Stats {
            visible: row.visible,
            in_flight: row.in_flight,
            delayed: row.delayed,
            oldest_age: Duration::from_secs_f64(row.oldest_age.max(0.0)),
            dead_lettered: row.dead_lettered,
        })
    }
}
