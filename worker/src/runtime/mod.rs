//! The worker loop: lease request messages, process them, report results.
//!
//! - Each message is processed under a lease that a heartbeat keeps
//!   extending while the work runs; when an extension finds the lease stale
//!   (another worker now holds the message), the work is abandoned.
//! - Transient failures (S3 or Postgres unavailable) are retried in place,
//!   with backoff, under the same lease, for up to `retry_for`; only then is
//!   the message released, so an outage does not count as a failed attempt.
//! - Permanent failures (corrupt image, invalid op) are reported at once.
//! - A message that keeps coming back without being finished (worker
//!   crashes, timeouts) moves to the dead letter queue after
//!   `MAX_RECEIVES` receives; the web server marks its output failed.
//! - At most `concurrency` images are processed at a time, and `prefetch`
//!   more are leased and downloaded meanwhile, so a slot that finishes
//!   finds its next original in hand instead of idling on S3. No more are
//!   leased than that: a message in hand is kept leased by its heartbeat,
//!   but one waiting in a local backlog would be waiting in vain while
//!   other workers idle.
//! - On shutdown: no new leases; messages in hand get `shutdown_grace` to
//!   finish, then their leases are released for another worker.
//!
//! - Each finished message costs Postgres one statement: its response
//!   sent and its request deleted together, batched with those of the other
//!   messages that finished meanwhile. A `processing` response goes out
//!   only for work that lasts past `processing_notice`.
//!
//! - A request's recipe is validated and costed again, as the web does at
//!   job creation: a forged request the web would not have sent fails its
//!   output before its original is downloaded.
//!
//! This file holds the settings, the [`Worker`] and its lease loop;
//! `request` reads a message, `handle` holds what is done with it,
//! `heartbeat` the task that keeps its lease, `report` the task that sends
//! final reports.

mod handle;
mod heartbeat;
mod priority;
mod report;
mod request;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue::{Message, Receipt, Routed};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use common::Limits;
use common::storage::Storage;

use crate::isolate::Isolation;
use crate::sandbox::Sandbox;
use report::Reporter;

/// Settings of one worker process.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Images processed at once.
    pub concurrency: usize,
    /// Messages leased beyond `concurrency`, whose originals download while
    /// every slot is busy.
    pub prefetch: usize,
    /// Lock taken on each request message, and renewed by the heartbeat
    /// every third of it.
    pub lock: Duration,
    /// Long-poll wait of one receive; also bounds how long shutdown waits
    /// for an idle worker.
    pub poll_wait: Duration,
    /// How long transient failures are retried in place before the message
    /// is released.
    pub retry_for: Duration,
    /// How long messages in hand may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// How long a message is worked on before the web is told it is being
    /// processed. Quicker work reports only its outcome: a response fewer,
    /// which is a Postgres transaction fewer at each end.
    pub processing_notice: Duration,
    /// The engine's child process per image, and its deadline.
    pub isolation: Isolation,
    /// Memory the images processed at once may use together, in bytes.
    pub max_memory: u64,
    pub limits: Limits,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            prefetch: 1,
            lock: Duration::from_secs(60),
            poll_wait: Duration::from_secs(1),
            retry_for: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            processing_notice: Duration::from_secs(1),
            isolation: Isolation {
                program: std::env::current_exe().unwrap_or_else(|_| "darkroom-worker".into()),
                deadline: Duration::from_secs(120),
                sandbox: Sandbox::On,
            },
            max_memory: 2 << 30,
            limits: Limits::default(),
        }
    }
}

/// A worker process's state.
#[derive(Clone)]
pub struct Worker {
    requests: Routed,
    responses: Routed,
    storage: Storage,
    settings: Arc<WorkerSettings>,
    /// Receipts of the messages in hand, to release at shutdown.
    in_hand: Arc<Mutex<HashSet<Receipt>>>,
    /// Mebibytes of `max_memory` not yet promised to an image.
    memory: Arc<Semaphore>,
    /// Free processing slots, of `concurrency`.
    engines: Arc<Semaphore>,
    reporter: Reporter,
}

impl Worker {
    /// Starts the task that sends this worker's final reports, so it needs
    /// a Tokio runtime.
    pub fn new(
        requests: Routed,
        responses: Routed,
        storage: Storage,
        settings: WorkerSettings,
    ) -> Self {
        let mebibytes = usize::try_from(settings.max_memory >> 20)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        let engines = Arc::new(Semaphore::new(settings.concurrency));
        Self {
            reporter: Reporter::start(requests.clone(), responses.clone()),
            requests,
            responses,
            storage,
            settings: Arc::new(settings),
            in_hand: Default::default(),
            memory: Arc::new(Semaphore::new(mebibytes)),
            engines,
        }
    }

    /// Runs until `shutdown` is cancelled, then finishes or releases the
    /// messages in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(
            self.settings.concurrency + self.settings.prefetch,
        ));
        let mut tasks = JoinSet::new();
        info!(
            concurrency = self.settings.concurrency,
            prefetch = self.settings.prefetch,
            "worker started"
        );
        while !shutdown.is_cancelled() {
            let Some(leased) = self.lease_batch(&slots, &shutdown).await else {
                break;
            };
            for (message, permit) in leased {
                self.spawn_handler(&mut tasks, message, permit);
            }
            while tasks.try_join_next().is_some() {}
        }
        self.wind_down(tasks).await;
    }

    /// Waits for a free slot (processing or prefetch), then leases at most
    /// one message per free slot, each paired with its slot. Empty after a
    /// failed receive (retried a second later); `None` once `shutdown` is
    /// cancelled.
    async fn lease_batch(
        &self,
        slots: &Arc<Semaphore>,
        shutdown: &CancellationToken,
    ) -> Option<Vec<(Message, OwnedSemaphorePermit)>> {
        // Only lease what can start now, so no lease ticks away in a local backlog.
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("semaphore is never closed"),
            () = shutdown.cancelled() => return None,
        };
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        // Not raced against shutdown: a receive dropped mid-flight could
        // lease messages nobody would process until their locks expired.
        let received = self
            .requests
            .receive_wait(permits.len(), self.settings.lock, self.settings.poll_wait)
            .await;
        match received {
            Ok(messages) => Some(messages.into_iter().zip(permits).collect()),
            Err(e) => {
                warn!(error = %e, "receive failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => Some(Vec::new()),
                    () = shutdown.cancelled() => None,
                }
            }
        }
    }

    /// Handles `message` in a task of its own, holding its slot until done.
    fn spawn_handler(
        &self,
        tasks: &mut JoinSet<()>,
        message: Message,
        permit: OwnedSemaphorePermit,
    ) {
        let worker = self.clone();
        let span = info_span!(
            "message",
            id = message.id,
            receive_count = message.receive_count
        );
        tasks.spawn(
            async move {
                worker.handle(message).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// Gives the messages in hand `shutdown_grace` to finish, then releases
    /// the leases of those still unfinished for another worker.
    async fn wind_down(&self, mut tasks: JoinSet<()>) {
        info!(
            in_hand = tasks.len(),
            grace = ?self.settings.shutdown_grace,
            "worker stopping; finishing messages in hand"
        );
        let finished = tokio::time::timeout(self.settings.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tasks.abort_all();
            let left: Vec<Receipt> = self.in_hand.lock().expect("not poisoned").drain().collect();
            warn!(
                released = left.len(),
                "shutdown grace ran out; releasing the rest"
            );
            for receipt in left {
                let _ = self
                    .requests
                    .change_visibility(&receipt, Duration::ZERO)
                    .await;
            }
        }
    }
}
