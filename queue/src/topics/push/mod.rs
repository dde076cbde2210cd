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
//!
//! # Layout
//! - here: the [`Pusher`], its settings and what it counts.
//! - `lease`: the loop that leases deliveries into free slots.
//! - `deliver`: one delivery, from its leased message to its end.
//! - `subscription`: what a delivery reads of its subscription.
//! - `parking`: holding deliveries back from busy and parked endpoints.
//! - `request`: the POST, its body, headers and signatures.
//! - `settle`: deleting, dropping or retrying a delivery once tried.
//! - `retry`: CMQ's retry strategies.
//!
//! [`DELIVERY_QUEUE`]: super::DELIVERY_QUEUE

mod deliver;
mod lease;
mod parking;
mod request;
mod retry;
mod settle;
mod subscription;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::breaker::Breakers;
use super::clients::Clients;
use super::in_flight::InFlight;
use super::signature::{timestamped, verify};
use crate::Queues;

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
}
