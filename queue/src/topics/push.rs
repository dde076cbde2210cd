//! HTTP delivery: pushers lease deliveries from [`DELIVERY_QUEUE`], POST
//! them, delete the delivered ones and send failed ones back with the
//! subscription's retry delay. A pusher that dies mid-delivery leaves its
//! lease to run out; the delivery then goes to another (at least once).
//!
//! Endpoints are strangers to each other, so a pusher never waits for a
//! batch: each delivery holds one of its slots only while its own POST is
//! out, and the slot is leased again as soon as it frees. An endpoint
//! (scheme, host and port, whatever its path: anyone may make a job, so one
//! client may own a hundred subscriptions to one black hole) may hold only
//! a few slots (its other deliveries go back to the queue for a moment),
//! and one that keeps failing is parked by its breaker, so an endpoint that
//! never answers costs its own deliveries time, not anyone else's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::address::public_host;
use super::breaker::{Admission, Breakers};
use super::clients::Clients;
use super::in_flight::InFlight;
use super::publish::Delivery;
use super::signature::{signature, timestamped, verify};
use super::{BodyFormat, DELIVERY_QUEUE, RetryPolicy};
use crate::attributes::{MAX_DELAY, from_millis};
use crate::{Error, Message, NewMessage, Queue, Queues, Result};

/// Longest wait between exponential-decay tries, as CMQ's.
const MAX_DECAY: Duration = Duration::from_secs(512);
/// Tries after the first under BACKOFF_RETRY.
const BACKOFF_RETRIES: u32 = 3;

/// Delivers topics' HTTP subscriptions. Run any number, in any processes.
/// Clones share their breakers, slots per subscription and counts.
#[derive(Clone, Debug)]
pub struct Pusher {
    queues: Queues,
    clients: Clients,
    settings: Settings,
    in_flight: Arc<InFlight>,
    breakers: Arc<Breakers>,
    counts: Arc<Counts>,
}

#[derive(Clone, Debug)]
struct Settings {
    /// Lease on each delivery; longer than `timeout`, so a live pusher
    /// keeps what it is delivering.
    lock: Duration,
    timeout: Duration,
    concurrency: usize,
    per_endpoint: usize,
    /// When a delivery of a subscription at its cap comes back.
    busy_retry: Duration,
    max_attempts: u32,
    /// Newer deliveries of its subscription that drop a delivery.
    max_pending: i64,
    breaker_threshold: u32,
    cool_off: Duration,
    use_env_proxy: bool,
}

/// What pushers gave up, for operators to see.
#[derive(Debug, Default)]
struct Counts {
    spent: AtomicU64,
    over_cap: AtomicU64,
    parked: AtomicU64,
}

/// A delivery's subscription, as a pusher needs it.
#[derive(sqlx::FromRow)]
struct Subscription {
    name: String,
    endpoint: String,
    retry: String,
    retry_interval_ms: i64,
    format: String,
    secret: Option<String>,
    public_only: bool,
    /// Deliveries ever published to it.
    published: i64,
    topic: String,
    message_lifetime_ms: i64,
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
    /// once and 2 per subscription, 10 s per POST, 30 s leases, 16 tries per
    /// delivery, the newest 1000 deliveries kept per subscription, endpoints parked after 5 failures in a row for 30 s (then
    /// 60 s, 120 s… up to 10 min), no proxy.
    pub fn new(queues: Queues) -> Self {
        let settings = Settings {
            lock: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            per_endpoint: 2,
            busy_retry: Duration::from_secs(1),
            max_attempts: 16,
            max_pending: 1000,
            breaker_threshold: 5,
            cool_off: Duration::from_secs(30),
            use_env_proxy: false,
        };
        Self::with(queues, settings)
    }

    fn with(queues: Queues, settings: Settings) -> Self {
        Self {
            queues,
            clients: Clients::new(settings.use_env_proxy),
            in_flight: Arc::new(InFlight::new(settings.per_endpoint)),
            breakers: Arc::new(Breakers::new(
                settings.breaker_threshold,
                settings.cool_off,
                settings.lock,
            )),
            counts: Arc::default(),
            settings,
        }
    }

    fn set(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.settings;
        change(&mut settings);
        Self::with(self.queues, settings)
    }

    /// Sets the POST timeout, and the lease to three times it.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.set(|s| {
            s.timeout = timeout;
            s.lock = timeout * 3;
        })
    }

    /// Sets how many deliveries are out at once.
    pub fn concurrency(self, n: usize) -> Self {
        self.set(|s| s.concurrency = n.max(1))
    }

    /// Sets how many deliveries to one endpoint (scheme, host, port) are
    /// out at once, and how soon one beyond that is leased again.
    pub fn per_endpoint(self, n: usize, busy_retry: Duration) -> Self {
        self.set(|s| {
            s.per_endpoint = n.max(1);
            s.busy_retry = busy_retry;
        })
    }

    /// Sets the most POSTs one delivery gets (within its topic's message
    /// lifetime and its retry policy).
    pub fn max_attempts(self, n: u32) -> Self {
        self.set(|s| s.max_attempts = n.max(1))
    }

    /// Sets how many of a subscription's newest deliveries are kept: one
    /// with `n` newer ones published after it is dropped when next leased.
    pub fn max_pending(self, n: u32) -> Self {
        self.set(|s| s.max_pending = i64::from(n.max(1)))
    }

    /// Parks an endpoint after `threshold` failures in a row for
    /// `cool_off`, doubled after each failed probe (up to 64 times, and
    /// 10 min).
    pub fn breaker(self, threshold: u32, cool_off: Duration) -> Self {
        self.set(|s| {
            s.breaker_threshold = threshold;
            s.cool_off = cool_off;
        })
    }

    /// Whether POSTs go through HTTP_PROXY / HTTPS_PROXY (off by default).
    pub fn use_env_proxy(self, on: bool) -> Self {
        self.set(|s| s.use_env_proxy = on)
    }

    /// Deliveries this pusher dropped with their tries spent.
    pub fn dropped_spent(&self) -> u64 {
        self.counts.spent.load(Ordering::Relaxed)
    }

    /// Deliveries this pusher dropped for the newer ones behind them.
    pub fn dropped_over_cap(&self) -> u64 {
        self.counts.over_cap.load(Ordering::Relaxed)
    }

    /// Deliveries this pusher put back unsent as their endpoint was parked.
    pub fn parked(&self) -> u64 {
        self.counts.parked.load(Ordering::Relaxed)
    }

    /// The `darkroom-signature` header of `body` sent at `unix_secs`.
    pub fn timestamped_signature(secret: &str, unix_secs: i64, body: &str) -> String {
        timestamped(secret, unix_secs, body)
    }

    /// Whether `header` is a `darkroom-signature` of `body` under `secret`
    /// made within `tolerance` of `now_unix_secs`.
    pub fn verify_signature(
        secret: &str,
        header: &str,
        body: &str,
        now_unix_secs: i64,
        tolerance: Duration,
    ) -> bool {
        verify(secret, header, body, now_unix_secs, tolerance)
    }

    /// Delivers until `shutdown`, then lets the deliveries out finish
    /// (for up to a POST's timeout).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut out = JoinSet::new();
        self.lease_until(&shutdown, &mut out).await;
        let finish = async { while out.join_next().await.is_some() {} };
        // Past this, what is still out is left to its lease.
        let _ = tokio::time::timeout(self.settings.timeout + Duration::from_secs(1), finish).await;
    }

    async fn lease_until(&self, shutdown: &CancellationToken, out: &mut JoinSet<()>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut queue = None;
        loop {
            while out.try_join_next().is_some() {}
            let free = tokio::select! {
                () = shutdown.cancelled() => return,
                free = free_slots(&slots) => free,
            };
            let leased = tokio::select! {
                () = shutdown.cancelled() => return,
                leased = self.lease(&mut queue, free.num_permits()) => leased,
            };
            match leased {
                Ok(batch) => self.start(out, queue.as_ref(), batch, free),
                Err(e) => {
                    tracing::warn!(error = %e, "topic pusher failed; will retry");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Leases up to `n` due deliveries, waiting a few seconds for one.
    async fn lease(&self, queue: &mut Option<Queue>, n: usize) -> Result<Vec<Message>> {
        let wait = Duration::from_secs(5);
        if queue.is_none() {
            match self.queues.open(DELIVERY_QUEUE).await {
                Ok(q) => *queue = Some(q),
                // No topic yet.
                Err(Error::QueueNotFound(_)) => {
                    tokio::time::sleep(wait).await;
                    return Ok(Vec::new());
                }
                Err(e) => return Err(e),
            }
        }
        let queue = queue.as_ref().expect("opened above");
        queue.receive_wait(n, self.settings.lock, wait).await
    }

    /// Starts a task for each of `batch`, each holding one of `free`.
    fn start(
        &self,
        out: &mut JoinSet<()>,
        queue: Option<&Queue>,
        batch: Vec<Message>,
        mut free: OwnedSemaphorePermit,
    ) {
        let Some(queue) = queue else { return };
        for m in batch {
            let slot = free.split(1).expect("a slot per leased delivery");
            let (pusher, queue) = (self.clone(), queue.clone());
            out.spawn(async move {
                if let Err(e) = pusher.deliver(&queue, &m).await {
                    // The lease runs out and the delivery comes back.
                    tracing::warn!(error = %e, message = m.id, "topic delivery failed");
                }
                drop(slot);
            });
        }
    }

    async fn deliver(&self, queue: &Queue, m: &Message) -> Result<()> {
        let Ok(d) = serde_json::from_str::<Delivery>(&m.body) else {
            tracing::error!(message = m.id, "unreadable topic delivery dropped");
            return self.finish(queue, m, None).await;
        };
        let Some(s) = self.subscription(d.subscription).await? else {
            // Unsubscribed since.
            return self.finish(queue, m, None).await;
        };
        if d.number > 0 && s.published - d.number >= self.settings.max_pending {
            return self.drop_over_cap(queue, m, &d, &s).await;
        }
        let endpoint = super::endpoint_key(&s.endpoint);
        let Some(_place) = self.in_flight.take(&endpoint) else {
            return put_back(queue, m, jittered(self.settings.busy_retry)).await;
        };
        if let Admission::Parked(wait) = self.breakers.admit(&endpoint) {
            self.counts.parked.fetch_add(1, Ordering::Relaxed);
            return put_back(queue, m, jittered(wait)).await;
        }
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
            &self.clients.public
        } else {
            &self.clients.any
        };
        let attempt = d.tries + 1;
        let mut request = client
            .post(&s.endpoint)
            .timeout(self.settings.timeout)
            .header("content-type", "application/json")
            .header("x-cmq-message-id", d.message_id.to_string())
            .header("x-cmq-message-tag", d.tags.join(","))
            .header("x-cmq-topic", &s.topic)
            .header("x-cmq-subscription", &s.name)
            .header("x-cmq-attempt", attempt.to_string());
        if let Some(key) = &d.routing_key {
            request = request.header("x-cmq-routing-key", key);
        }
        if let Some(secret) = &s.secret {
            let now = chrono::Utc::now().timestamp();
            request = request
                .header("x-cmq-signature", signature(secret, &body))
                .header("darkroom-signature", timestamped(secret, now, &body));
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
        self.breakers.record(&endpoint, delivered);
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

    async fn subscription(&self, id: i32) -> Result<Option<Subscription>> {
        let s = sqlx::query_as(
            r#"
            select s.name, s.endpoint, s.retry, s.retry_interval_ms, s.format, s.secret,
                   s.public_only, s.published, t.name as topic, t.message_lifetime_ms
            from queue_subscriptions s join queue_topics t on t.id = s.topic_id
            where s.id = $1
            "#,
        )
        .bind(id)
        .fetch_optional(self.queues.pool())
        .await?;
        Ok(s)
    }

    /// Drops a delivery with `max_pending` newer ones behind it, counting
    /// it in its subscription's `dropped`.
    async fn drop_over_cap(
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

/// A permit for one free slot, and for every other one free then.
async fn free_slots(slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    let mut free = slots
        .clone()
        .acquire_owned()
        .await
        .expect("the slots are never closed");
    let rest = u32::try_from(slots.available_permits()).unwrap_or(u32::MAX);
    if rest > 0
        && let Ok(more) = slots.clone().try_acquire_many_owned(rest)
    {
        free.merge(more);
    }
    free
}

/// Makes a delivery due again after `delay` without a try spent on it.
async fn put_back(queue: &Queue, m: &Message, delay: Duration) -> Result<()> {
    match queue.change_visibility(&m.receipt, delay).await {
        // Another pusher has it now.
        Ok(()) | Err(Error::StaleReceipt) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sends a failed delivery back with one more try counted in it, due after
/// `delay`. Its tries are counted in the delivery rather than read from
/// its receive count, which put-backs raise too.
async fn retry_later(queue: &Queue, m: &Message, mut d: Delivery, delay: Duration) -> Result<()> {
    d.tries += 1;
    let again = NewMessage {
        body: serde_json::to_string(&d).expect("a delivery serializes"),
        delay: Some(delay.min(MAX_DELAY)),
        group: None,
    };
    let mut tx = queue.pool().begin().await?;
    let deleted = queue
        .delete_batch_in(&mut tx, std::slice::from_ref(&m.receipt))
        .await?;
    // Its lease ran out: whoever holds it now decides.
    if deleted.deleted.is_empty() {
        return Ok(());
    }
    queue.send_batch_in(&mut tx, &[again]).await?;
    tx.commit().await?;
    Ok(())
}

/// `delay` and up to a quarter more, so deliveries put back together do
/// not all come due at once.
fn jittered(delay: Duration) -> Duration {
    let nanos = u64::from(chrono::Utc::now().timestamp_subsec_nanos());
    delay + delay.mul_f64((nanos % 1000) as f64 / 4000.0)
}

/// Where a delivery stands after a failed try.
struct Tries {
    /// This try's number, 1 for the first.
    attempt: u32,
    max: u32,
    age: Duration,
    lifetime: Duration,
}

/// What to do after try `tries.attempt` under `retry`.
fn outcome(delivered: bool, retry: RetryPolicy, tries: &Tries) -> Outcome {
    if delivered {
        return Outcome::Delivered;
    }
    if tries.attempt >= tries.max {
        return Outcome::Dropped;
    }
    let delay = match retry {
        RetryPolicy::Backoff { interval } if tries.attempt <= BACKOFF_RETRIES => interval,
        RetryPolicy::Backoff { .. } => return Outcome::Dropped,
        RetryPolicy::ExponentialDecay => {
            let exponent = tries.attempt.saturating_sub(1).min(9);
            Duration::from_secs(1 << exponent).min(MAX_DECAY)
        }
    };
    if tries.age + delay >= tries.lifetime {
        Outcome::Dropped
    } else {
        Outcome::Retry(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn try_number(attempt: u32) -> Tries {
        Tries {
            attempt,
            max: u32::MAX,
            age: Duration::ZERO,
            lifetime: DAY,
        }
    }

    #[test]
    fn exponential_decay_doubles_from_one_second_to_its_cap() {
        let delays: Vec<_> = (1..=12)
            .map(|a| outcome(false, RetryPolicy::ExponentialDecay, &try_number(a)))
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
                outcome(false, retry, &try_number(attempt)),
                Outcome::Retry(Duration::from_secs(10))
            );
        }
        assert_eq!(outcome(false, retry, &try_number(4)), Outcome::Dropped);
    }

    #[test]
    fn no_retry_outlives_the_message() {
        let old = Tries {
            age: Duration::from_secs(40),
            lifetime: Duration::from_secs(60),
            ..try_number(6)
        };
        assert_eq!(
            outcome(false, RetryPolicy::ExponentialDecay, &old),
            Outcome::Dropped
        );
        assert_eq!(
            outcome(true, RetryPolicy::ExponentialDecay, &old),
            Outcome::Delivered
        );
    }

    #[test]
    fn the_last_allowed_try_is_not_retried() {
        let last = Tries {
            max: 16,
            ..try_number(16)
        };
        assert_eq!(
            outcome(false, RetryPolicy::ExponentialDecay, &last),
            Outcome::Dropped
        );
        let before = Tries {
            max: 16,
            ..try_number(15)
        };
        assert!(matches!(
            outcome(false, RetryPolicy::ExponentialDecay, &before),
            Outcome::Retry(_)
        ));
    }
}
