//! FIFO deduplication: a send whose deduplication id was seen within the
//! last five minutes is accepted and not sent again; the answer names the
//! message the first send made (`queue_sqs_dedup`, in the control
//! database, so every shard of a queue shares one window).

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::Result;

/// How long a deduplication id is remembered, as SQS does.
pub(crate) const WINDOW: Duration = Duration::from_secs(5 * 60);

/// The deduplication id SQS derives from a body under
/// `ContentBasedDeduplication`.
pub(crate) fn content_id(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// The scope a deduplication id is remembered in: the queue, or one message
/// group of it (`DeduplicationScope=messageGroup`).
pub(crate) fn scoped(dedup_id: &str, group: Option<&str>) -> String {
    match group {
        Some(g) => format!("{g}\u{1}{dedup_id}"),
        None => dedup_id.to_owned(),
    }
}

/// Claims each of `ids` for a first send. Returns, per id, `None` when the
/// claim was won (send it, then [`record`]), or the message id and sequence
/// number an earlier send within the window made.
pub(crate) async fn claim(
    pool: &PgPool,
    queue: &str,
    ids: &[String],
) -> Result<Vec<Option<(String, String)>>> {
    let won =
        sqlx::query_file_scalar!("sql/claim_dedup_ids.sql", queue, ids, WINDOW.as_secs_f64(),)
            .fetch_all(pool)
            .await?;
    let mut out = Vec::with_capacity(ids.len());
    let lost: Vec<String> = ids.iter().filter(|i| !won.contains(i)).cloned().collect();
    let mut earlier = Vec::new();
    // The first send of a lost id may still be under way (message not yet
    // recorded); its answer comes within moments.
    for attempt in 0..50 {
        earlier = sqlx::query_file!("sql/claimed_dedup_ids.sql", queue, &lost)
            .fetch_all(pool)
            .await?;
        if earlier.iter().all(|r| r.message.is_some()) || attempt == 49 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in ids {
        if won.contains(id) {
            out.push(None);
            continue;
        }
        let found = earlier.iter().find(|r| &r.dedup_id == id).and_then(|r| {
            Some((
                r.message.clone()?,
                r.sequence_number.clone().unwrap_or_default(),
            ))
        });
        // Still unrecorded after a second: the first send failed after its
        // claim; this one goes ahead rather than be lost.
        out.push(found);
    }
    Ok(out)
}

/// Records which message each won claim became.
pub(crate) async fn record(
    pool: &PgPool,
    queue: &str,
    ids: &[String],
    messages: &[String],
    sequence_numbers: &[String],
) -> Result<()> {
    sqlx::query_file!(
        "sql/record_dedup_ids.sql",
        queue,
        ids,
        messages,
        sequence_numbers,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives up claims whose send failed, so a retry sends.
pub(crate) async fn release(pool: &PgPool, queue: &str, ids: &[String]) -> Result<()> {
    sqlx::query!(
        "delete from queue_sqs_dedup where queue = $1 and dedup_id = any($2) and message is null",
        queue,
        ids,
    )
    .execute(pool)
    .await?;
    Ok(())
}
