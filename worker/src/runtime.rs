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
//! - At most `concurrency` messages are leased at a time, so none waits in a
//!   local backlog while its lock runs out.
//! - On shutdown: no new leases; messages in hand get `shutdown_grace` to
//!   finish, then their leases are released for another worker.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use metrics::{counter, gauge, histogram};
use queue::{Message, Queue, Receipt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use common::Limits;
use common::probe;
use common::protocol::{self, Outcome, Request, Response};
use common::storage::{Storage, StorageError};

use crate::isolate::{Isolation, RunError};

/// Settings of one worker process.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Messages processed at once.
    pub concurrency: usize,
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
            lock: Duration::from_secs(60),
            poll_wait: Duration::from_secs(1),
            retry_for: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            isolation: Isolation {
                program: std::env::current_exe().unwrap_or_else(|_| "darkroom-worker".into()),
                deadline: Duration::from_secs(120),
            },
            max_memory: 2 << 30,
            limits: Limits::default(),
        }
    }
}

/// A worker process's state.
#[derive(Clone)]
pub struct Worker {
    requests: Queue,
    responses: Queue,
    storage: Storage,
    settings: Arc<WorkerSettings>,
    /// Receipts of the messages in hand, to release at shutdown.
    in_hand: Arc<Mutex<HashSet<Receipt>>>,
    /// Mebibytes of `max_memory` not yet promised to an image.
    memory: Arc<Semaphore>,
}

/// How handling one message went wrong.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// Worth another try later (S3 or Postgres unavailable).
    #[error("transient: {0}")]
    Retry(String),
    /// The message can never succeed; report it and drop it.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(_) | StorageError::TooLarge { .. } => {
                Failure::Permanent(e.to_string())
            }
            _ => Failure::Retry(e.to_string()),
        }
    }
}

impl From<queue::Error> for Failure {
    fn from(e: queue::Error) -> Self {
        Failure::Retry(e.to_string())
    }
}

impl Worker {
    pub fn new(
        requests: Queue,
        responses: Queue,
        storage: Storage,
        settings: WorkerSettings,
    ) -> Self {
        let mebibytes = usize::try_from(settings.max_memory >> 20)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            requests,
            responses,
            storage,
            settings: Arc::new(settings),
            in_hand: Default::default(),
            memory: Arc::new(Semaphore::new(mebibytes)),
        }
    }

    /// Runs until `shutdown` is cancelled, then finishes or releases the
    /// messages in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = JoinSet::new();
        info!(concurrency = self.settings.concurrency, "worker started");
        while !shutdown.is_cancelled() {
            // Only lease what can start now, so no lease ticks away in a local backlog.
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("semaphore is never closed"),
                () = shutdown.cancelled() => break,
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
            let messages = match received {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "receive failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            for (message, permit) in messages.into_iter().zip(permits) {
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
            while tasks.try_join_next().is_some() {}
        }
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

    async fn handle(&self, message: Message) {
        let request: Request = match serde_json::from_str(&message.body) {
            Ok(r) => r,
            Err(e) => {
                // Nobody can be told about a message nobody can read; drop it loudly.
                warn!(error = %e, "unreadable request message; deleting it");
                let _ = self.requests.delete(&message.receipt).await;
                return;
            }
        };
        let span = info_span!("request", job = %request.job_id, image = %request.image_id, recipe = %request.recipe.name);
        self.in_hand
            .lock()
            .expect("not poisoned")
            .insert(message.receipt);
        gauge!("darkroom_worker_in_flight").increment(1.0);
        self.handle_request(&message, &request)
            .instrument(span)
            .await;
        gauge!("darkroom_worker_in_flight").decrement(1.0);
        self.in_hand
            .lock()
            .expect("not poisoned")
            .remove(&message.receipt);
    }

    async fn handle_request(&self, message: &Message, request: &Request) {
        let lost = CancellationToken::new();
        // The longest this worker holds a message: retries in place, a wait
        // for memory and the engine's run, each bounded on its own. Past it
        // something is stuck, so the lease is let go for another worker.
        let hold = self.settings.retry_for + 2 * self.settings.isolation.deadline;
        let heartbeat = tokio::spawn(heartbeat(
            self.requests.clone(),
            message.receipt,
            self.settings.lock,
            hold,
            lost.clone(),
        ));
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = self.process_with_retries(request) => Some(outcome),
            () = lost.cancelled() => None,
        };
        heartbeat.abort();
        match outcome {
            None => {
                counter!("darkroom_worker_failures_total", "kind" => "lease_lost").increment(1);
                warn!("lease lost or let go; abandoning this attempt");
            }
            Some(Ok(outcome)) => {
                histogram!("darkroom_worker_message_seconds").record(started.elapsed());
                self.finish(message, request, outcome).await;
            }
            Some(Err(Failure::Permanent(error))) => {
                counter!("darkroom_worker_failures_total", "kind" => "permanent").increment(1);
                warn!(%error, "permanent failure");
                self.finish(message, request, Outcome::Failed { error })
                    .await;
            }
            Some(Err(Failure::Retry(error))) => {
                counter!("darkroom_worker_failures_total", "kind" => "transient").increment(1);
                let backoff = retry_backoff(message.receive_count);
                warn!(%error, ?backoff, "still failing after retries; releasing the message");
                let _ = self
                    .requests
                    .change_visibility(&message.receipt, backoff)
                    .await;
            }
        }
    }

    /// Processes, retrying transient failures in place until `retry_for`.
    async fn process_with_retries(&self, request: &Request) -> Result<Outcome, Failure> {
        let deadline = Instant::now() + self.settings.retry_for;
        let mut attempt = 0;
        loop {
            match self.process(request).await {
                Err(Failure::Retry(error)) if Instant::now() < deadline => {
                    attempt += 1;
                    let pause = retry_backoff(attempt).min(Duration::from_secs(30));
                    warn!(%error, attempt, ?pause, "transient failure; retrying");
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    async fn process(&self, request: &Request) -> Result<Outcome, Failure> {
        // A request names its original, but only the one its ids give is
        // its own: anything else would read another job's file.
        let source_key = protocol::source_key(request.job_id, request.image_id);
        if request.source_key != source_key {
            return Err(Failure::Permanent(format!(
                "the request names `{}` as its original, which is not its image's; refused",
                request.source_key
            )));
        }
        self.respond(request, Outcome::Processing).await?;
        let input = self.storage.get(&source_key).await?;
        let limits = self.settings.limits;
        let ops = &request.recipe.ops;
        let probe = probe::probe(&input, &limits).map_err(|e| Failure::Permanent(e.to_string()))?;
        let estimate = probe::estimate(&probe, input.len() as u64, ops, None);
        limits
            .check(&estimate)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        // The ceiling the child runs under is what it is admitted with, so
        // the images in hand never hold more than `max_memory` together. The
        // estimate is an upper bound already (tested op by op); the margin
        // is for allocators rounding up.
        let ceiling = estimate.memory + estimate.memory / 4;
        let mebibytes = u32::try_from(ceiling.div_ceil(1 << 20)).unwrap_or(u32::MAX);
        if u64::from(mebibytes) << 20 > self.settings.max_memory {
            return Err(Failure::Permanent(format!(
                "processing this {}×{} image with this recipe needs about {mebibytes} MiB, more \
                 than this worker's {} MiB (DARKROOM_WORKER_MAX_MEMORY); use a smaller image or \
                 a lighter recipe",
                probe.width,
                probe.height,
                self.settings.max_memory >> 20
            )));
        }
        // Waits while other images hold the memory; the heartbeat keeps
        // this message leased meanwhile.
        let _admitted = self
            .memory
            .clone()
            .acquire_many_owned(mebibytes)
            .await
            .expect("the memory semaphore is never closed");
        let processed = self
            .settings
            .isolation
            .run(input, ops, &limits, u64::from(mebibytes) << 20)
            .await
            .map_err(|e| match e {
                RunError::Start { .. } => Failure::Retry(e.to_string()),
                other => Failure::Permanent(other.to_string()),
            })?;
        let output = processed.output;
        histogram!("darkroom_worker_memory_bytes").record(processed.peak_memory as f64);
        for (step, took) in &output.timings {
            histogram!("darkroom_worker_op_seconds", "op" => *step).record(*took);
        }
        let key = protocol::output_key(request.job_id, request.image_id, &request.recipe.name);
        let bytes = output.bytes.len() as u64;
        self.storage
            .put(
                &key,
                Bytes::from(output.bytes),
                output.format.content_type(),
            )
            .await?;
        info!(
            width = output.width,
            height = output.height,
            bytes,
            peak_memory = processed.peak_memory,
            estimated_memory = estimate.memory,
            "output stored"
        );
        Ok(Outcome::Done {
            width: output.width,
            height: output.height,
            bytes,
            format: output.format,
            key,
        })
    }

    async fn respond(&self, request: &Request, outcome: Outcome) -> Result<(), Failure> {
        let response = Response {
            job_id: request.job_id,
            image_id: request.image_id,
            recipe: request.recipe.name.clone(),
            outcome,
        };
        let body = serde_json::to_string(&response).expect("responses always serialise");
        self.responses.send(body).await?;
        Ok(())
    }

    /// Reports the final outcome, then deletes the request. A crash between
    /// the two only repeats an idempotent response.
    async fn finish(&self, message: &Message, request: &Request, outcome: Outcome) {
        let failed = matches!(outcome, Outcome::Failed { .. });
        if let Err(e) = self.respond(request, outcome).await {
            warn!(error = %e, "could not send the response; the request will be retried");
            return;
        }
        match self.requests.delete(&message.receipt).await {
            Ok(()) => {
                counter!("darkroom_worker_processed_total", "outcome" => if failed { "failed" } else { "done" })
                    .increment(1);
            }
            Err(queue::Error::StaleReceipt) => {
                warn!("lease expired before delete; another worker may repeat this message")
            }
            Err(e) => warn!(error = %e, "delete failed; the request will be redelivered"),
        }
    }
}

/// Extends the lease every third of `lock` until aborted; cancels `lost`
/// when the lease turns out stale, or once `hold` has passed (the work is
/// then abandoned and the lease runs out). Failures to reach Postgres are
/// not staleness: the lease may well still hold, so work goes on.
async fn heartbeat(
    requests: Queue,
    receipt: Receipt,
    lock: Duration,
    hold: Duration,
    lost: CancellationToken,
) {
    let every = lock / 3;
    let until = Instant::now() + hold;
    loop {
        tokio::time::sleep(every).await;
        if Instant::now() >= until {
            warn!(
                ?hold,
                "held this message longer than any attempt may take; letting it go"
            );
            lost.cancel();
            return;
        }
        match requests.change_visibility(&receipt, lock).await {
            Ok(()) => {}
            Err(queue::Error::StaleReceipt) => {
                lost.cancel();
                return;
            }
            Err(e) => warn!(error = %e, "heartbeat failed; will try again"),
        }
    }
}

/// Backoff before another try: 1 s, 2 s, 4 s ... up to 256 s.
fn retry_backoff(attempt: i32) -> Duration {
    let exp = attempt.clamp(1, 9) as u32 - 1;
    Duration::from_secs(2u64.pow(exp)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(retry_backoff(1), Duration::from_secs(1));
        assert_eq!(retry_backoff(3), Duration::from_secs(4));
        assert_eq!(retry_backoff(100), Duration::from_secs(256));
    }
}
