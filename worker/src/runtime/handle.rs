//! Handling one leased message: read the request, process its image under
//! the lease (retrying transient failures in place), then report the
//! outcome and delete the message, or release it for a later try.

use std::time::{Duration, Instant};

use bytes::Bytes;
use metrics::{counter, gauge, histogram};
use queue::Message;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use common::cost::Estimate;
use common::probe::{self, Probe};
use common::protocol::{self, Outcome, Request, Response};
use common::recipe::Op;
use common::storage::StorageError;

use super::heartbeat::{heartbeat, retry_backoff};
use super::report::Reported;
use super::request::{self, Read};
use super::{Worker, priority};
use crate::isolate::{Original, Processed, RunError, Share};

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
    pub(super) async fn handle(&self, message: Message) {
        let request = match request::read(&message.body, &self.settings.limits) {
            Read::Valid(request) => request,
            Read::Refused { request, error } => {
                return self.refuse(&message, &request, error).await;
            }
            Read::Unreadable(error) => {
                // Nobody can be told about a message nobody can read; drop it loudly.
                warn!(%error, "unreadable request message; deleting it");
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

    /// Fails the output of a request the web would not have sent, without
    /// downloading its original or starting the engine.
    async fn refuse(&self, message: &Message, request: &Request, error: String) {
        counter!("darkroom_worker_failures_total", "kind" => "refused").increment(1);
        warn!(
            job = %request.job_id,
            image = %request.image_id,
            recipe = %request.recipe.name,
            %error,
            "refused a request the web would not have sent"
        );
        self.finish(message, request, Outcome::Failed { error })
            .await;
    }

    async fn handle_request(&self, message: &Message, request: &Request) {
        let lost = CancellationToken::new();
        // The longest this worker holds a message: retries in place, a wait
        // for a processing slot (the runs of the prefetched messages ahead
        // of it), a wait for memory and the engine's run, each bounded on
        // its own. Past it something is stuck, so the lease is let go for
        // another worker.
        let s = &self.settings;
        let runs = 2 + s.prefetch.div_ceil(s.concurrency.max(1));
        let hold = s.retry_for + u32::try_from(runs).unwrap_or(u32::MAX) * s.isolation.deadline;
        let heartbeat = tokio::spawn(heartbeat(
            self.requests.clone(),
            message.receipt,
            self.settings.lock,
            hold,
            lost.clone(),
        ));
        let notice = self.notice_processing(request);
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = self.process_with_retries(request) => Some(outcome),
            () = lost.cancelled() => None,
        };
        notice.abort();
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
        let source_key = own_source_key(request)?;
        let input = self.download(&source_key).await?;
        let ops = &request.recipe.ops;
        let (probe, estimate) = self.estimate(&input, ops)?;
        let mebibytes = self.memory_ceiling(&probe, &estimate)?;
        // Waits for a processing slot (the download ran in a prefetch slot
        // while they were all busy), then while other images hold the
        // memory; the heartbeat keeps this message leased meanwhile. The
        // slot is free again once the engine is done, so the next image
        // runs while this one uploads.
        let processed = {
            let _slot = self.engines.acquire().await.expect("never closed");
            let _admitted = self.admit(mebibytes).await;
            let share = Share {
                memory: u64::from(mebibytes) << 20,
                nice: priority::niceness(estimate.work),
            };
            self.run_engine(input, ops, share).await?
        };
        self.store(request, processed, &estimate).await
    }

    /// The original under `key`, written into an [`Original`] chunk by chunk
    /// as it arrives: never gathered into one buffer.
    async fn download(&self, key: &str) -> Result<Original, Failure> {
        let mut body = self.storage.get_stream(key).await?;
        let mut original = Original::new().map_err(|e| Failure::Retry(e.to_string()))?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Failure::Retry(format!("downloading {key}: {e}")))?;
            original
                .write(&chunk)
                .map_err(|e| Failure::Retry(format!("holding {key}: {e}")))?;
        }
        Ok(original)
    }

    /// Probes `input` and estimates what `ops` on it cost, refusing what is
    /// over the limits.
    fn estimate(&self, input: &Original, ops: &[Op]) -> Result<(Probe, Estimate), Failure> {
        let limits = self.settings.limits;
        let reader = input.reader().map_err(|e| Failure::Retry(e.to_string()))?;
        let probe =
            probe::probe_reader(reader, &limits).map_err(|e| Failure::Permanent(e.to_string()))?;
        let estimate = probe::estimate(&probe, input.len(), ops, None);
        limits
            .check(&estimate)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        Ok((probe, estimate))
    }

    /// The memory ceiling of the child processing this image, in MiB;
    /// refused when it is more than this worker ever has.
    fn memory_ceiling(&self, probe: &Probe, estimate: &Estimate) -> Result<u32, Failure> {
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
        Ok(mebibytes)
    }

    /// Promises `mebibytes` of `max_memory` to one image until the permit
    /// is dropped.
    async fn admit(&self, mebibytes: u32) -> OwnedSemaphorePermit {
        self.memory
            .clone()
            .acquire_many_owned(mebibytes)
            .await
            .expect("the memory semaphore is never closed")
    }

    /// Runs `ops` on `input` in the engine's child, given `share`, and
    /// records what the run used.
    async fn run_engine(
        &self,
        input: Original,
        ops: &[Op],
        share: Share,
    ) -> Result<Processed, Failure> {
        let processed = self
            .settings
            .isolation
            .run(input, ops, &self.settings.limits, share)
            .await
            .map_err(|e| match e {
                RunError::Start { .. } => Failure::Retry(e.to_string()),
                RunError::Panicked(ref what) => {
                    // A bug of ours rather than the file's: counted and
                    // logged apart so that it gets looked into, where as
                    // one more failed file it would go unseen.
                    counter!("darkroom_worker_engine_panics_total").increment(1);
                    error!(panic = %what, "the image engine panicked");
                    Failure::Permanent(e.to_string())
                }
                other => Failure::Permanent(other.to_string()),
            })?;
        histogram!("darkroom_worker_memory_bytes").record(processed.peak_memory as f64);
        for (step, took) in &processed.output.timings {
            histogram!("darkroom_worker_op_seconds", "op" => *step).record(*took);
        }
        Ok(processed)
    }

    /// Stores the processed image under the request's output key.
    async fn store(
        &self,
        request: &Request,
        processed: Processed,
        estimate: &Estimate,
    ) -> Result<Outcome, Failure> {
        let output = processed.output;
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

    /// Tells the web, once the work has lasted `processing_notice`, that it
    /// is under way. Best effort: a lost notice only shows the output
    /// queued until its outcome.
    fn notice_processing(&self, request: &Request) -> tokio::task::JoinHandle<()> {
        let (worker, request) = (self.clone(), request.clone());
        tokio::spawn(
            async move {
                tokio::time::sleep(worker.settings.processing_notice).await;
                let body = response_body(&request, Outcome::Processing);
                if let Err(e) = worker.responses.send(body).await {
                    debug!(error = %e, "could not send the processing notice");
                }
            }
            .in_current_span(),
        )
    }

    /// Reports the final outcome and deletes the request, in one
    /// statement: neither happens without the other.
    async fn finish(&self, message: &Message, request: &Request, outcome: Outcome) {
        let failed = matches!(outcome, Outcome::Failed { .. });
        let body = response_body(request, outcome);
        match self.reporter.report(body, message.receipt).await {
            Ok(Reported::Done) => {
                counter!("darkroom_worker_processed_total", "outcome" => if failed { "failed" } else { "done" })
                    .increment(1);
            }
            Ok(Reported::Stale) => {
                warn!("lease expired before delete; another worker may repeat this message")
            }
            Err(error) => {
                warn!(%error, "could not report; the request will be redelivered")
            }
        }
    }
}

/// A response to `request`, as a message body.
fn response_body(request: &Request, outcome: Outcome) -> String {
    let response = Response {
        job_id: request.job_id,
        image_id: request.image_id,
        recipe: request.recipe.name.clone(),
        outcome,
    };
    serde_json::to_string(&response).expect("responses always serialise")
}

/// The key of the request's original, refusing any but its own.
fn own_source_key(request: &Request) -> Result<String, Failure> {
    // A request names its original, but only the one its ids give is
    // its own: anything else would read another job's file.
    let source_key = protocol::source_key(request.job_id, request.image_id);
    if request.source_key != source_key {
        return Err(Failure::Permanent(format!(
            "the request names `{}` as its original, which is not its image's; refused",
            request.source_key
        )));
    }
    Ok(source_key)
}
