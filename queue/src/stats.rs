//! Queue depth figures.

use std::time::Duration;

use serde::Serialize;

use crate::{Queue, Result};

/// How many messages are in which state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Ready to be received now.
    pub visible: i64,
    /// Leased by a receiver.
    pub in_flight: i64,
    /// Sent with a delay that has not elapsed.
    pub delayed: i64,
    /// Age of the oldest message not yet deleted, in seconds.
    #[serde(serialize_with = "as_seconds")]
    #[schema(value_type = f64)]
    pub oldest_age: Duration,
    /// Messages of this queue now in its dead letter queue.
    pub dead_lettered: i64,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Queue {
    /// The queue's figures, from counters kept as messages change (see
    /// `queue_counters` in the migration): the cost does not grow with the
    /// backlog. `in_flight` and `delayed` may still include messages that
    /// became visible less than a second ago.
    pub async fn stats(&self) -> Result<Stats> {
        let row = sqlx::query_file!("sql/queue_stats.sql", self.id())
            .fetch_one(&self.pool)
            .await?;
        Ok(Stats {
            visible: (row.live - row.in_flight - row.delayed).max(0),
            in_flight: row.in_flight,
            delayed: row.delayed,
            oldest_age: Duration::from_secs_f64(row.oldest_age.max(0.0)),
            dead_lettered: row.dead_lettered,
        })
    }
}

impl Queue {
    /// Whether the queue holds no live message (visible, in flight or
    /// delayed), read from the rows themselves: unlike the counters, this
    /// never lags, which retiring a shard's part of a queue needs.
    pub(crate) async fn holds_nothing(&self) -> Result<bool> {
        let any = sqlx::query_scalar!(
            r#"select exists (select 1 from queue_messages where queue_id = $1) as "any!""#,
            self.id()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(!any)
    }
}
