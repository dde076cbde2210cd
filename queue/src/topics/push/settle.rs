//! The end of a tried delivery: deleted when delivered or given up, or
//! sent back for its next try. Deletes go through `finish`, which counts
//! the delivery off its subscription's `pending`, so the backlog a
//! subscription reports is what its pushers have yet to end.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Pusher;
use super::retry::{Outcome, Tries, outcome, retry_later};
use super::subscription::Subscription;
use crate::attributes::from_millis;
use crate::topics::RetryPolicy;
use crate::topics::publish::Delivery;
use crate::{Error, Message, Queue, Result};

impl Pusher {
    /// Ends the try just made of `d`, `delivered` or not, as its
    /// subscription's retry policy says.
    pub(super) async fn settle(
        &self,
        queue: &Queue,
        m: &Message,
        d: Delivery,
        s: &Subscription,
        delivered: bool,
    ) -> Result<()> {
        let attempt = d.tries + 1;
        let tries = Tries {
            attempt,
            max: self.settings.max_attempts,
            age: Duration::from_millis(
                u64::try_from(chrono::Utc::now().timestamp_millis() - d.published_at).unwrap_or(0),
            ),
            lifetime: from_millis(s.message_lifetime_ms),
        };
        let retry = RetryPolicy::parse(&s.retry, s.retry_interval_ms);
        match outcome(delivered, retry, &tries) {
            Outcome::Delivered => self.finish(queue, m, Some(d.subscription)).await,
            Outcome::Retry(delay) => retry_later(queue, m, d, delay).await,
            Outcome::Dropped => {
                self.counts.spent.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    topic = s.topic,
                    subscription = s.name,
                    message = d.message_id,
                    attempts = attempt,
                    "topic delivery dropped: its retries are spent"
                );
                self.finish(queue, m, Some(d.subscription)).await
            }
        }
    }

    /// Drops a delivery with `max_pending` newer ones behind it, counting
    /// it in its subscription's `dropped`.
    pub(super) async fn drop_over_cap(
        &self,
        queue: &Queue,
        m: &Message,
        d: &Delivery,
        s: &Subscription,
    ) -> Result<()> {
        self.counts.over_cap.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            topic = s.topic,
            subscription = s.name,
            message = d.message_id,
            max_pending = self.settings.max_pending,
            "topic delivery dropped: newer ones fill its subscription's pending cap"
        );
        sqlx::query("update queue_subscriptions set dropped = dropped + 1 where id = $1")
            .bind(d.subscription)
            .execute(self.queues.pool())
            .await?;
        self.finish(queue, m, Some(d.subscription)).await
    }

    /// Deletes a delivery made or given up, and counts it off its
    /// subscription's backlog.
    pub(super) async fn finish(
        &self,
        queue: &Queue,
        m: &Message,
        subscription: Option<i32>,
    ) -> Result<()> {
        match queue.delete(&m.receipt).await {
            Ok(()) => {}
            // Its lease ran out: whoever holds it now finishes it.
            Err(Error::StaleReceipt) => return Ok(()),
            Err(e) => return Err(e),
        }
        if let Some(id) = subscription {
            sqlx::query!(
                "update queue_subscriptions set pending = greatest(pending - 1, 0) where id = $1",
                id
            )
            .execute(self.queues.pool())
            .await?;
        }
        Ok(())
    }
}
