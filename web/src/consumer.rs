//! Consumes the response queue: applies each worker report to its output row
//! and deletes the message.
//!
//! Updates are idempotent and order-insensitive: states only move up the
//! ladder queued < processing < failed < done, so a response processed twice,
//! or a late `processing` after `done`, changes nothing. Several web instances
//! can consume at once.

use std::time::Duration;

use queue::{Message, Queue};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;
use worker::protocol::{Outcome, Response};

use sqlx::PgPool;

/// Responses leased per round.
const BATCH: usize = 100;
const LOCK: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(1);

/// Runs until `shutdown`.
pub async fn run(pool: PgPool, responses: Queue, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        // A short long-poll: responses arrive at once, shutdown waits at most WAIT.
        let messages = match responses.receive_wait(BATCH, LOCK, WAIT).await {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "receiving responses failed; retrying");
                Vec::new()
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut done = Vec::with_capacity(messages.len());
        for message in &messages {
            match apply(&pool, message).await {
                Ok(()) => done.push(message.receipt),
                Err(e) => {
                    warn!(error = %e, id = message.id, "applying a response failed; it will be redelivered")
                }
            }
        }
        if !done.is_empty()
            && let Err(e) = responses.delete_batch(&done).await
        {
            warn!(error = %e, "deleting responses failed; they will be applied again (harmlessly)");
        }
    }
}

async fn apply(pool: &PgPool, message: &Message) -> sqlx::Result<()> {
    let response: Response = match serde_json::from_str(&message.body) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, id = message.id, "unreadable response; dropping it");
            return Ok(());
        }
    };
    debug!(job = %response.job_id, image = %response.image_id, recipe = %response.recipe, "response");
    apply_response(pool, &response).await
}

/// Applies one response to its output row.
pub async fn apply_response(pool: &PgPool, r: &Response) -> sqlx::Result<()> {
    let (job, image, recipe): (Uuid, Uuid, &str) = (r.job_id, r.image_id, &r.recipe);
    match &r.outcome {
        Outcome::Processing => {
            sqlx::query!(
                r#"
                update outputs set state = 'processing', updated_at = now()
                where job_id = $1 and image_id = $2 and recipe = $3 and state = 'queued'
                "#,
                job,
                image,
                recipe
            )
            .execute(pool)
            .await?;
        }
        Outcome::Done {
            width,
            height,
            bytes,
            format,
            key,
        } => {
            sqlx::query!(
                r#"
                update outputs
                set state = 'done', width = $4, height = $5, bytes = $6, format = $7,
                    storage_key = $8, error = null, updated_at = now()
                where job_id = $1 and image_id = $2 and recipe = $3 and state <> 'done'
                "#,
                job,
                image,
                recipe,
                *width as i32,
                *height as i32,
                *bytes as i64,
                format.as_str(),
                key
            )
            .execute(pool)
            .await?;
        }
        Outcome::Failed { error } => {
            sqlx::query!(
                r#"
                update outputs set state = 'failed', error = $4, updated_at = now()
                where job_id = $1 and image_id = $2 and recipe = $3
                  and state in ('queued', 'processing')
                "#,
                job,
                image,
                recipe,
                error
            )
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}
