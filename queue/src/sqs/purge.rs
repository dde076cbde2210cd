//! PurgeQueue as SQS has it: once a minute per queue, and a FIFO queue's
//! deduplication window starts afresh.

use serde_json::{Map, Value};

use super::claims::{self, Claim};
use super::error::{SqsError, SqsResult};
use super::{Ctx, Input};

pub(super) async fn purge(ctx: &Ctx<'_>, input: Input) -> SqsResult<Map<String, Value>> {
    let name = input.queue()?;
    let queue = ctx.sqs.router.open(name).await?;
    if !claims::take(ctx.control(), name, Claim::Purge).await? {
        return Err(SqsError::purge_in_progress(name));
    }
    queue.purge().await?;
    if name.ends_with(".fifo") {
        claims::forget_deduplication(ctx.control(), name).await?;
    }
    Ok(Map::new())
}
