//! Consumes the response queue: applies worker reports to their output rows
//! and deletes the messages.
//!
//! Updates are idempotent and order-insensitive: states only move up the
//! ladder queued < processing < failed < done, so a response processed twice,
//! or a late `processing` after `done`, changes nothing. Several web instances
//! can consume at once. Jobs whose outputs moved are announced to every
//! instance's progress streams, and their events published to the job
//! events topic (see [`crate::webhooks`]), in the same transaction.
//!
//! A batch of responses costs Postgres two transactions whatever its size:
//! its receive, then one that applies every response in one statement,
//! announces the jobs and deletes the messages. Applied and deleted
//! together, a response is never lost between the two nor applied after
//! its delete.
//!
//! The consumer looks for responses every [`POLL`] rather than waiting for
//! a NOTIFY: Postgres delivers each NOTIFY in a transaction of every
//! listening backend of the database (every worker's and web's), so one
//! per response would cost more than the responses. Polling costs a cheap
//! empty receive per round when idle, whatever the fleet's size.
//!
//! [`apply`] holds the statement that moves output rows.

use std::collections::BTreeSet;
use std::time::Duration;

use common::protocol::MAX_RECEIVES;
use common::protocol::{self, Outcome, Request, Response};
use common::storage::Storage;
use queue::{DeadLetterReason, Message, Receipt, Routed, Topics};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::events::JobEvents;
use crate::metrics;
use crate::webhooks::{self, Moved};

mod apply;

use apply::{Applied, apply_responses};

/// Responses leased per round.
const BATCH: usize = 100;
const LOCK: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(1);
/// Time from one round of the consumer that found less than a full batch to
/// the next: responses arriving meanwhile wait for it, so under load a round
/// carries many (two transactions, whatever their number) for at most this
/// much more delay on the progress bars.
const POLL: Duration = Duration::from_millis(100);

/// Up to `BATCH` messages, waiting up to `wait` for the first. On failure,
/// pauses for `WAIT` (or until shutdown) and returns none, so callers just
/// loop.
async fn receive(
    queue: &Routed,
    lock: Duration,
    wait: Duration,
    shutdown: &CancellationToken,
) -> Vec<Message> {
    match queue.receive_wait(BATCH, lock, wait).await {
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
pub async fn run(
    pool: PgPool,
    storage: Storage,
    responses: Routed,
    topics: Topics,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let next = tokio::time::Instant::now() + POLL;
        let messages = receive(&responses, LOCK, Duration::ZERO, &shutdown).await;
        if !messages.is_empty()
            && let Err(e) = consume(&pool, &storage, &responses, &topics, &messages).await
        {
            // One response the database refuses must not hold back the
            // rest of its batch, round after round.
            warn!(error = %e, count = messages.len(), "applying a batch of responses failed; applying them one by one");
            for message in &messages {
                let one = std::slice::from_ref(message);
                if let Err(e) = consume(&pool, &storage, &responses, &topics, one).await {
                    warn!(error = %e, id = message.id, "applying a response failed; it will be redelivered");
                }
            }
        }
        if messages.len() < BATCH {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }
}

/// Applies `messages`, announces the jobs that moved and deletes the
/// messages, all in one transaction.
async fn consume(
    pool: &PgPool,
    storage: &Storage,
    responses: &Routed,
    topics: &Topics,
    messages: &[Message],
) -> anyhow::Result<()> {
    let batch: Vec<Response> = messages.iter().filter_map(read).collect();
    let receipts: Vec<Receipt> = messages.iter().map(|m| m.receipt).collect();
    let mut tx = pool.begin().await?;
    let applied = apply_responses(&mut tx, &batch).await?;
    delete_orphans(&mut tx, storage, &batch, &applied).await?;
    announce(&mut tx, topics, &applied).await?;
    // A stale receipt (the lock ran out during a slow round) is harmless:
    // its response, applied again later, changes nothing. Responses on
    // other shards are deleted once this commits, as a crash in between
    // only applies them again.
    let elsewhere = responses.delete_batch_in(&mut tx, &receipts).await?;
    tx.commit().await?;
    if !elsewhere.is_empty() {
        responses.delete_batch(&elsewhere).await?;
    }
    record(&applied);
    Ok(())
}

/// The response a message carries; an unreadable one is dropped loudly.
fn read(message: &Message) -> Option<Response> {
    match serde_json::from_str::<Response>(&message.body) {
        Ok(r) => {
            debug!(job = %r.job_id, image = %r.image_id, recipe = %r.recipe, "response");
            Some(r)
        }
        Err(e) => {
            warn!(error = %e, id = message.id, "unreadable response; dropping it");
            None
        }
    }
}

/// Results stored after their job expired and was swept: nothing points to
/// them any more, so they go too, before their responses are deleted.
async fn delete_orphans(
    conn: &mut PgConnection,
    storage: &Storage,
    batch: &[Response],
    applied: &[Applied],
) -> anyhow::Result<()> {
    let unapplied: Vec<&Response> = batch
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Done { .. }))
        .filter(|r| {
            !applied
                .iter()
                .any(|a| a.image_id == r.image_id && a.recipe == r.recipe)
        })
        .collect();
    if unapplied.is_empty() {
        return Ok(());
    }
    let images: Vec<Uuid> = unapplied.iter().map(|r| r.image_id).collect();
    let recipes: Vec<String> = unapplied.iter().map(|r| r.recipe.clone()).collect();
    let gone = sqlx::query_file!("sql/orphaned_results.sql", &images, &recipes)
        .fetch_all(&mut *conn)
        .await?;
    for output in gone {
        let key = unapplied
            .iter()
            .find(|r| r.image_id == output.image_id && r.recipe == output.recipe)
            .map(|r| protocol::output_key(r.job_id, r.image_id, &r.recipe))
            .expect("found among the unapplied");
        storage.delete(&key).await?;
        debug!(key, "deleted the result of an output that no longer exists");
    }
    Ok(())
}

/// Marks failed the outputs of requests the worker fleet gave up on: those
/// that came back unfinished `MAX_RECEIVES` times (workers crashing or
/// timing out on them) and were dead-lettered. The messages stay in the dead
/// letter queue, inspectable and redrivable (a redriven request that then
/// succeeds turns its output done); each is leased for the longest lock, so
/// it is looked at again only twice a day, changing nothing.
pub async fn fail_dead_letters(
    pool: PgPool,
    dead: Routed,
    topics: Topics,
    shutdown: CancellationToken,
) {
    const HOLD: Duration = Duration::from_secs(12 * 3600);
    while !shutdown.is_cancelled() {
        let messages = receive(&dead, HOLD, WAIT, &shutdown).await;
        let failures: Vec<Response> = messages
            .iter()
            .filter_map(|m| dead_letter_failure(m, dead.name()))
            .collect();
        if failures.is_empty() {
            continue;
        }
        if let Err(e) = fail(&pool, &topics, &failures).await {
            warn!(error = %e, "marking dead-lettered outputs failed; will retry");
        }
    }
}

/// The failure to report for a dead-lettered request.
fn dead_letter_failure(message: &Message, queue: &str) -> Option<Response> {
    let Ok(request) = serde_json::from_str::<Request>(&message.body) else {
        warn!(id = message.id, "unreadable dead letter; leaving it");
        return None;
    };
    let error = match message.dead_letter_reason {
        Some(DeadLetterReason::Expired) => format!(
            "expired: not processed within the request queue's retention (set by an \
             operator); the request is kept in {queue}"
        ),
        _ => format!(
            "gave up after {MAX_RECEIVES} attempts that never finished (the worker \
             crashed or timed out each time); the request is kept in {queue}"
        ),
    };
    Some(Response {
        job_id: request.job_id,
        image_id: request.image_id,
        recipe: request.recipe.name,
        outcome: Outcome::Failed { error },
    })
}

async fn fail(pool: &PgPool, topics: &Topics, failures: &[Response]) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let applied = apply_responses(&mut tx, failures).await?;
    for a in &applied {
        warn!(job = %a.job_id, image = %a.image_id, recipe = %a.recipe, "request dead-lettered; output failed");
    }
    announce(&mut tx, topics, &applied).await?;
    tx.commit().await?;
    record(&applied);
    Ok(())
}

/// Tells every instance's progress streams which jobs moved, and publishes
/// the jobs' events, in the caller's transaction.
async fn announce(
    tx: &mut PgConnection,
    topics: &Topics,
    applied: &[Applied],
) -> anyhow::Result<()> {
    let jobs: BTreeSet<Uuid> = applied.iter().map(|a| a.job_id).collect();
    JobEvents::announce(&mut *tx, &jobs.into_iter().collect::<Vec<_>>()).await?;
    let moved: Vec<Moved> = applied
        .iter()
        .map(|a| Moved {
            job: a.job_id,
            image: a.image_id,
            recipe: a.recipe.clone(),
            state: a.state,
        })
        .collect();
    webhooks::publish(tx, topics, &moved).await
}

fn record(applied: &[Applied]) {
    for a in applied.iter().filter(|a| a.state.is_final()) {
        metrics::output_finished(a.state.as_str(), a.seconds);
    }
}
