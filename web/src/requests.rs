//! Request messages for workers, sent with the rows that describe them:
//! an upload's outputs, recipes added to a job, a retried output.

use common::protocol::Request;
use queue::{NewMessage, Routed};
use sqlx::PgConnection;

/// The message asking a worker to make one output.
pub fn message(request: &Request) -> serde_json::Result<NewMessage> {
    serde_json::to_string(request).map(NewMessage::new)
}

/// Sends `messages` as part of `tx`. With the request queue in this
/// database (always, without shards) the requests commit with the rows.
/// Placed on other shards, they are sent before the rows commit: if the
/// commit then fails, a worker processes an output no job has, and the
/// response consumer deletes its result. Work is repeated, never lost.
pub async fn send_in(
    tx: &mut PgConnection,
    requests: &Routed,
    messages: &[NewMessage],
) -> anyhow::Result<()> {
    match requests.sends_on(0).await? {
        Some(here) => {
            for chunk in messages.chunks(queue::MAX_BATCH) {
                here.send_batch_in(&mut *tx, chunk).await?;
            }
            here.notify_in(&mut *tx).await?;
        }
        None => {
            for chunk in messages.chunks(queue::MAX_BATCH) {
                requests.send_batch(chunk).await?;
            }
        }
    }
    Ok(())
}
