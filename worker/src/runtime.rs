//! The worker loop: lease request messages, process them, report results.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use queue::{Message, Queue, QueueAttributes, Queues};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::engine::{self, EngineError, Limits};
use crate::protocol::{self, Outcome, REQUEST_QUEUE, RESPONSE_QUEUE, Request, Response};
use crate::storage::{Storage, StorageError};

/// Settings of one worker process.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Messages processed at once.
    pub concurrency: usize,
    /// Lock taken on each request message.
    pub lock: Duration,
    /// Long-poll wait of one receive; also bounds how long shutdown waits
    /// for an idle worker.
    pub poll_wait: Duration,
    pub limits: Limits,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            lock: Duration::from_secs(60),
            poll_wait: Duration::from_secs(1),
            limits: Limits::default(),
        }
    }
}

/// Creates the request and response queues unless they exist.
pub async fn declare_queues(queues: &Queues) -> queue::Result<(Queue, Queue)> {
    let requests = queues
        .ensure(REQUEST_QUEUE, &QueueAttributes::default())
        .await?;
    let responses = queues
        .ensure(RESPONSE_QUEUE, &QueueAttributes::default())
        .await?;
    Ok((requests, responses))
}

/// A worker process's state.
#[derive(Clone)]
pub struct Worker {
    requests: Queue,
    responses: Queue,
    storage: Storage,
    settings: Arc<WorkerSettings>,
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
        Self {
            requests,
            responses,
            storage,
            settings: Arc::new(settings),
        }
    }

    /// Runs until `shutdown` is cancelled, then finishes the messages in hand.
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
            in_flight = tasks.len(),
            "worker stopping; finishing messages in hand"
        );
        while tasks.join_next().await.is_some() {}
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
        async {
            match self.process(&request).await {
                Ok(outcome) => self.finish(&message, &request, outcome).await,
                Err(Failure::Permanent(error)) => {
                    warn!(%error, "permanent failure");
                    self.finish(&message, &request, Outcome::Failed { error })
                        .await
                }
                Err(Failure::Retry(error)) => {
                    let backoff = retry_backoff(message.receive_count);
                    warn!(%error, ?backoff, "transient failure; will retry");
                    let _ = self
                        .requests
                        .change_visibility(&message.receipt, backoff)
                        .await;
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn process(&self, request: &Request) -> Result<Outcome, Failure> {
        self.respond(request, Outcome::Processing).await?;
        let input = self.storage.get(&request.source_key).await?;
        let ops = request.recipe.ops.clone();
        let limits = self.settings.limits;
        let output =
            tokio::task::spawn_blocking(move || engine::process(&input, &ops, &limits, None))
                .await
                .map_err(|e| Failure::Retry(format!("processing task died: {e}")))?
                .map_err(|e: EngineError| Failure::Permanent(e.to_string()))?;
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
        if let Err(e) = self.respond(request, outcome).await {
            warn!(error = %e, "could not send the response; the request will be retried");
            return;
        }
        match self.requests.delete(&message.receipt).await {
            Ok(()) => {}
            Err(queue::Error::StaleReceipt) => {
                warn!("lease expired before delete; another worker may repeat this message")
            }
            Err(e) => warn!(error = %e, "delete failed; the request will be redelivered"),
        }
    }
}

/// Backoff before a failed message is tried again: 1 s, 2 s, 4 s ... up to 5 min.
fn retry_backoff(receive_count: i32) -> Duration {
    let exp = receive_count.clamp(1, 9) as u32 - 1;
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
