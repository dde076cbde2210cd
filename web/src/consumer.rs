//! Consumes the response queue: applies each worker report to its output row
//! and deletes the message.
//!
//! Updates are idempotent and order-insensitive: states only move up the
//! ladder queued < processing < failed < done, so a response processed twice,
//! or a late `processing` after `done`, changes nothing. Several web instances
//! can consume at once. Jobs whose outputs moved are announced to every
//! instance's progress streams.

use std::collections::BTreeSet;
use std::time::Duration;

use common::protocol::MAX_RECEIVES;
use common::protocol::{self, Outcome, Request, Response};
use common::storage::Storage;
use queue::{DeadLetterReason, Message, Queue};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::events::JobEvents;
use crate::metrics;

/// Responses leased per round.
const BATCH: usize = 100;
const LOCK: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(1);

/// A short long-poll for up to `BATCH` messages: they arrive at once, and
/// shutdown waits at most `WAIT`. On failure, pauses for `WAIT` (or until
/// shutdown) and returns none, so callers just loop.
async fn receive(queue: &Queue, lock: Duration, shutdown: &CancellationToken) -> Vec<Message> {
    match queue.receive_wait(BATCH, lock, WAIT).await {
        Ok(messages) => messages,
        Err(e) => {
            warn!(queue = queue.name(), error = %e, "receiving failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(WAIT) => {}
                () = shutdown.cancelled() => {}
            }
            Vec::new()
        }
    }
}

/// Runs until `shutdown`.
pub async fn run(pool: PgPool, storage: Storage, responses: Queue, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let messages = receive(&responses, LOCK, &shutdown).await;
        if messages.is_empty() {
            continue;
        }
        let mut done = Vec::with_capacity(messages.len());
        let mut changed = BTreeSet::new();
        for message in &messages {
            match apply(&pool, &storage, message).await {
                Ok(job) => {
                    done.push(message.receipt);
                    changed.extend(job);
                }
                Err(e) => {
                    warn!(error = %e, id = message.id, "applying a response failed; it will be redelivered")
                }
            }
        }
        let changed: Vec<Uuid> = changed.into_iter().collect();
        if let Err(e) = JobEvents::announce(&pool, &changed).await {
            debug!(error = %e, "announcing job changes failed; streams will notice by polling");
        }
        if !done.is_empty()
            && let Err(e) = responses.delete_batch(&done).await
        {
            warn!(error = %e, "deleting responses failed; they will be applied again (harmlessly)");
        }
    }
}

/// Marks failed the outputs of requests the worker fleet gave up on: those
/// that came back unfinished `MAX_RECEIVES` times (workers crashing or
/// timing out on them) and were dead-lettered. The messages stay in the dead
/// letter queue, inspectable and redrivable (a redriven request that then
/// succeeds turns its output done); each is leased for the longest lock, so
/// it is looked at again only twice a day, changing nothing.
pub async fn fail_dead_letters(pool: PgPool, dead: Queue, shutdown: CancellationToken) {
    const HOLD: Duration = Duration::from_secs(12 * 3600);
    while !shutdown.is_cancelled() {
        let messages = receive(&dead, HOLD, &shutdown).await;
        let mut changed = BTreeSet::new();
        for message in &messages {
            let Ok(request) = serde_json::from_str::<Request>(&message.body) else {
                warn!(id = message.id, "unreadable dead letter; leaving it");
                continue;
            };
            let error = match message.dead_letter_reason {
                Some(DeadLetterReason::Expired) => format!(
                    "expired: not processed within the request queue's retention (set by an \
                     operator); the request is kept in {}",
                    dead.name()
                ),
                _ => format!(
                    "gave up after {MAX_RECEIVES} attempts that never finished (the worker \
                     crashed or timed out each time); the request is kept in {}",
                    dead.name()
                ),
            };
            let response = Response {
                job_id: request.job_id,
                image_id: request.image_id,
                recipe: request.recipe.name,
                outcome: Outcome::Failed { error },
            };
            match apply_response(&pool, &response).await {
                Ok(true) => {
                    warn!(job = %response.job_id, image = %response.image_id, recipe = %response.recipe, "request dead-lettered; output failed");
                    changed.insert(response.job_id);
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "marking a dead-lettered output failed; will retry"),
            }
        }
        let changed: Vec<Uuid> = changed.into_iter().collect();
        if let Err(e) = JobEvents::announce(&pool, &changed).await {
            debug!(error = %e, "announcing job changes failed; streams will notice by polling");
        }
    }
}

/// Applies one message; returns the job when its output changed.
async fn apply(
    pool: &PgPool,
    storage: &Storage,
    message: &Message,
) -> anyhow::Result<Option<Uuid>> {
    let response: Response = match serde_json::from_str(&message.body) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, id = message.id, "unreadable response; dropping it");
            return Ok(None);
        }
    };
    debug!(job = %response.job_id, image = %response.image_id, recipe = %response.recipe, "response");
    if apply_response(pool, &response).await? {
        return Ok(Some(response.job_id));
    }
    // A result stored after its job expired and was swept: nothing points to
    // it any more, so it goes too.
    if matches!(response.outcome, Outcome::Done { .. }) && !output_exists(pool, &response).await? {
        let key = protocol::output_key(response.job_id, response.image_id, &response.recipe);
        storage.delete(&key).await?;
        debug!(key, "deleted the result of an output that no longer exists");
    }
    Ok(None)
}

async fn output_exists(pool: &PgPool, r: &Response) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from outputs where image_id = $1 and recipe = $2) as "exists!""#,
        r.image_id,
        r.recipe
    )
    .fetch_one(pool)
    .await
}

/// The columns of an output row an outcome sets; the others become null.
#[derive(Default)]
struct Columns<'a> {
    width: Option<i32>,
    height: Option<i32>,
    bytes: Option<i64>,
    format: Option<&'a str>,
    key: Option<&'a str>,
    error: Option<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(outcome: &'a Outcome) -> Self {
        match outcome {
            Outcome::Processing => Columns::default(),
            Outcome::Done {
                width,
                height,
                bytes,
                format,
                key,
            } => Columns {
                width: Some(*width as i32),
                height: Some(*height as i32),
                bytes: Some(*bytes as i64),
                format: Some(format.as_str()),
                key: Some(key),
                error: None,
            },
            Outcome::Failed { error } => Columns {
                error: Some(error),
                ..Columns::default()
            },
        }
    }
}

/// Applies one response to its output row; returns whether it changed.
pub async fn apply_response(pool: &PgPool, r: &Response) -> sqlx::Result<bool> {
    let (job, image, recipe): (Uuid, Uuid, &str) = (r.job_id, r.image_id, &r.recipe);
    // Downloads serve the key stored here: only the one the ids give may be
    // stored, or a response could hand this job another job's object.
    if let Outcome::Done { key, .. } = &r.outcome
        && *key != protocol::output_key(job, image, recipe)
    {
        warn!(%job, %image, recipe, key, "response names a result key that is not its output's; refused");
        let refused = Response {
            outcome: Outcome::Failed {
                error: "the worker reported its result under a key that is not this output's; \
                        refused"
                    .into(),
            },
            ..r.clone()
        };
        return Box::pin(apply_response(pool, &refused)).await;
    }
    let state = r.outcome.state();
    let set = Columns::of(&r.outcome);
    // The ladder is `OutputState`'s order: only an output in a state below
    // the new one changes. Each change takes a new event number, for the
    // progress streams.
    let seconds = sqlx::query_scalar!(
        r#"
        update outputs
        set state = $4, width = $5, height = $6, bytes = $7, format = $8, storage_key = $9,
            error = $10, updated_at = now(), event = nextval('output_events')
        where job_id = $1 and image_id = $2 and recipe = $3 and state = any($11)
        returning extract(epoch from now() - (
            select created_at from images where id = $2
        ))::float8 as "seconds!"
        "#,
        job,
        image,
        recipe,
        state as _,
        set.width,
        set.height,
        set.bytes,
        set.format,
        set.key,
        set.error,
        &state.below() as _,
    )
    .fetch_optional(pool)
    .await?;
    if let Some(seconds) = seconds
        && state.is_final()
    {
        metrics::output_finished(state.as_str(), seconds);
    }
    Ok(seconds.is_some())
}
