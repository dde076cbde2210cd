//! HTTP delivery: pushers lease deliveries from [`DELIVERY_QUEUE`], POST
//! them, delete the delivered ones and put failed ones back with the
//! subscription's retry delay. A pusher that dies mid-delivery leaves its
//! lease to run out; the delivery then goes to another (at least once).

use std::time::Duration;

use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use super::address::{PublicOnly, public_host};
use super::publish::Delivery;
use super::{BodyFormat, DELIVERY_QUEUE, RetryPolicy};
use crate::attributes::from_millis;
use crate::{Error, Message, Queue, Queues, Result};

/// Longest wait between exponential-decay tries, as CMQ's.
const MAX_DECAY: Duration = Duration::from_secs(512);
/// Tries after the first under BACKOFF_RETRY.
const BACKOFF_RETRIES: i32 = 3;

/// Delivers topics' HTTP subscriptions. Run any number, in any processes.
#[derive(Clone, Debug)]
pub struct Pusher {
    queues: Queues,
    client: reqwest::Client,
    /// For `public_only` subscriptions: resolves to public addresses only.
    public_client: reqwest::Client,
    /// Lease on each delivery; longer than `timeout`, so a live pusher
    /// keeps what it is delivering.
    lock: Duration,
    timeout: Duration,
    concurrency: usize,
}

/// What became of one delivery attempt.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Retry(Duration),
    Dropped,
}

impl Pusher {
    /// A pusher over the topics of `queues`' database: 16 deliveries at
    /// once, 10 s per POST, 30 s leases.
    pub fn new(queues: Queues) -> Self {
        Self {
            queues,
            client: reqwest::Client::new(),
            public_client: reqwest::Client::builder()
                .dns_resolver(std::sync::Arc::new(PublicOnly))
                // A redirect could lead anywhere.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client with a resolver builds"),
            lock: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            concurrency: 16,
        }
    }

    /// Sets the POST timeout, and the lease to three times it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.lock = timeout * 3;
        self
    }

    /// Delivers until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = self.round(Duration::from_secs(5)) => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "topic pusher failed; will retry");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    /// Leases what deliveries are due (waiting up to `wait` for one) and
    /// makes them; returns how many it handled.
    pub async fn round(&self, wait: Duration) -> Result<usize> {
        let queue = match self.queues.open(DELIVERY_QUEUE).await {
            Ok(q) => q,
            // No topic yet.
            Err(Error::QueueNotFound(_)) => {
                tokio::time::sleep(wait).await;
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let batch = queue
            .receive_wait(self.concurrency, self.lock, wait)
            .await?;
        let n = batch.len();
        futures::stream::iter(batch)
            .for_each_concurrent(self.concurrency, |m| {
                let queue = &queue;
                async move {
                    if let Err(e) = self.deliver(queue, &m).await {
                        // The lease runs out and the delivery comes back.
                        tracing::warn!(error = %e, message = m.id, "topic delivery failed");
                    }
                }
            })
            .await;
        Ok(n)
    }

    async fn deliver(&self, queue: &Queue, m: &Message) -> Result<()> {
        let Ok(d) = serde_json::from_str::<Delivery>(&m.body) else {
            tracing::error!(message = m.id, "unreadable topic delivery dropped");
            return self.finish(queue, m, None).await;
        };
        let Some(s) = sqlx::query!(
            r#"
            select s.name, s.endpoint, s.retry, s.retry_interval_ms, s.format, s.secret,
                   s.public_only, t.name as topic, t.message_lifetime_ms
            from queue_subscriptions s join queue_topics t on t.id = s.topic_id
            where s.id = $1
            "#,
            d.subscription
        )
        .fetch_optional(self.queues.pool())
        .await?
        else {
            // Unsubscribed since.
            return self.finish(queue, m, None).await;
        };
        let body = match BodyFormat::parse(&s.format) {
            BodyFormat::Simplified => d.body.clone(),
            BodyFormat::Json => serde_json::json!({
                "topicName": s.topic,
                "subscriptionName": s.name,
                "msgId": d.message_id.to_string(),
                "msgBody": d.body,
                "msgTag": d.tags,
                "routingKey": d.routing_key,
                "publishTime": d.published_at,
            })
            .to_string(),
        };
        let client = if s.public_only {
            if !public_host(&s.endpoint) {
                tracing::warn!(
                    endpoint = s.endpoint,
                    "delivery to a non-public address dropped"
                );
                return self.finish(queue, m, Some(d.subscription)).await;
            }
            &self.public_client
        } else {
            &self.client
        };
        let mut request = client
            .post(&s.endpoint)
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .header("x-cmq-message-id", d.message_id.to_string())
            .header("x-cmq-message-tag", d.tags.join(","))
            .header("x-cmq-topic", &s.topic)
            .header("x-cmq-subscription", &s.name)
            .header("x-cmq-attempt", m.receive_count.to_string());
        if let Some(key) = &d.routing_key {
            request = request.header("x-cmq-routing-key", key);
        }
        if let Some(secret) = &s.secret {
            request = request.header("x-cmq-signature", signature(secret, &body));
        }
        let delivered = match request.body(body).send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::debug!(status = %r.status(), endpoint = s.endpoint, "delivery refused");
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, endpoint = s.endpoint, "delivery failed");
                false
            }
        };
        let lifetime = from_millis(s.message_lifetime_ms);
        let retry = RetryPolicy::parse(&s.retry, s.retry_interval_ms);
        let age = Duration::from_millis(
            u64::try_from(chrono::Utc::now().timestamp_millis() - d.published_at).unwrap_or(0),
        );
        match outcome(delivered, retry, m.receive_count, age, lifetime) {
            Outcome::Delivered => self.finish(queue, m, Some(d.subscription)).await,
            Outcome::Retry(delay) => match queue.change_visibility(&m.receipt, delay).await {
                // Another pusher has it now.
                Ok(()) | Err(Error::StaleReceipt) => Ok(()),
                Err(e) => Err(e),
            },
            Outcome::Dropped => {
                tracing::warn!(
                    topic = s.topic,
                    subscription = s.name,
                    message = d.message_id,
                    attempts = m.receive_count,
                    "topic delivery dropped: its retries are spent"
                );
                self.finish(queue, m, Some(d.subscription)).await
            }
        }
    }

    /// Deletes a delivery made or given up, and counts it off its
    /// subscription's backlog.
    async fn finish(&self, queue: &Queue, m: &Message, subscription: Option<i32>) -> Result<()> {
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

/// What to do after attempt `attempt` (1 for the first) of a delivery
/// `age` old, under `retry`, within `lifetime`.
fn outcome(
    delivered: bool,
    retry: RetryPolicy,
    attempt: i32,
    age: Duration,
    lifetime: Duration,
) -> Outcome {
    if delivered {
        return Outcome::Delivered;
    }
    let delay = match retry {
        RetryPolicy::Backoff { interval } if attempt <= BACKOFF_RETRIES => interval,
        RetryPolicy::Backoff { .. } => return Outcome::Dropped,
        RetryPolicy::ExponentialDecay => {
            let exponent = u32::try_from(attempt - 1).unwrap_or(0).min(9);
            Duration::from_secs(1 << exponent).min(MAX_DECAY)
        }
    };
    if age + delay >= lifetime {
        Outcome::Dropped
    } else {
        Outcome::Retry(delay)
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn exponential_decay_doubles_from_one_second_to_its_cap() {
        let delays: Vec<_> = (1..=12)
            .map(|a| outcome(false, RetryPolicy::ExponentialDecay, a, Duration::ZERO, DAY))
            .collect();
        let secs = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512];
        for (got, s) in delays.iter().zip(secs) {
            assert_eq!(*got, Outcome::Retry(Duration::from_secs(s)));
        }
    }

    #[test]
    fn backoff_tries_three_more_times_then_drops() {
        let retry = RetryPolicy::Backoff {
            interval: Duration::from_secs(10),
        };
        for attempt in 1..=3 {
            assert_eq!(
                outcome(false, retry, attempt, Duration::ZERO, DAY),
                Outcome::Retry(Duration::from_secs(10))
            );
        }
        assert_eq!(
            outcome(false, retry, 4, Duration::ZERO, DAY),
            Outcome::Dropped
        );
    }

    #[test]
    fn no_retry_outlives_the_message() {
        let lifetime = Duration::from_secs(60);
        assert_eq!(
            outcome(
                false,
                RetryPolicy::ExponentialDecay,
                6,
                Duration::from_secs(40),
                lifetime
            ),
            Outcome::Dropped
        );
        assert_eq!(
            outcome(
                true,
                RetryPolicy::ExponentialDecay,
                6,
                Duration::from_secs(400),
                lifetime
            ),
            Outcome::Delivered
        );
    }
}
