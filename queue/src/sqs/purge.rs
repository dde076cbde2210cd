//! PurgeQueue as SQS has it: once a minute per queue, and a FIFO queue's
//! deduplication window starts afresh.
//!
//! The minute is a claim in the deduplication table (`queue_sqs_dedup`, in
//! the control database, so every endpoint process sees it), under an id
//! no message can have: it is the same thing, an id remembered for a while,
//! and one statement claims it or finds it held.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{SqsError, SqsResult};
use super::{Ctx, Input};

/// How long after a purge SQS refuses the next one.
const BETWEEN_PURGES: Duration = Duration::from_secs(60);

/// The claim a purge holds. Deduplication ids and message groups are
/// printable ASCII, joined by `\u{1}` (see `fifo::scoped`), so no message's
/// claim can be this.
const PURGE_CLAIM: &str = "\u{2}purge";

pub(super) async fn purge(ctx: &Ctx<'_>, input: Input) -> SqsResult<Map<String, Value>> {
    let name = input.queue()?;
    let queue = ctx.sqs.router.open(name).await?;
    let claim = [PURGE_CLAIM.to_owned()];
    let window = BETWEEN_PURGES.as_secs_f64();
    let won = sqlx::query_file_scalar!("sql/claim_dedup_ids.sql", name, &claim[..], window)
        .fetch_all(ctx.control())
        .await
        .map_err(crate::Error::from)?;
    if won.is_empty() {
        return Err(SqsError::purge_in_progress(name));
    }
    queue.purge().await?;
    if name.ends_with(".fifo") {
        sqlx::query!(
            "delete from queue_sqs_dedup where queue = $1 and dedup_id <> $2",
            name,
            PURGE_CLAIM
        )
        .execute(ctx.control())
        .await
        .map_err(crate::Error::from)?;
    }
    Ok(Map::new())
}
