//! What SQS allows once a minute per queue name: a purge, and creating a
//! queue again after deleting it. Each is a claim in the deduplication
//! table (`queue_sqs_dedup`, in the control database, so every endpoint
//! process sees it), under an id no message can have: it is the same
//! thing, an id remembered for a while.

use std::time::Duration;

use sqlx::PgPool;

use crate::Result;

/// How long SQS holds a purge or a deletion against the queue's name.
const WINDOW: Duration = Duration::from_secs(60);

/// A claim on a queue name.
#[derive(Clone, Copy)]
pub(crate) enum Claim {
    Purge,
    Deletion,
}

impl Claim {
    /// Its id. Deduplication ids and message groups are printable ASCII,
    /// joined by `\u{1}` (see `fifo::scoped`), so no message's can start
    /// with `\u{2}`.
    fn id(self) -> &'static str {
        match self {
            Claim::Purge => "\u{2}purge",
            Claim::Deletion => "\u{2}deleted",
        }
    }
}

/// Takes `claim` on `queue` for a minute; false when one still holds it.
pub(crate) async fn take(pool: &PgPool, queue: &str, claim: Claim) -> Result<bool> {
    let ids = [claim.id().to_owned()];
    let window = WINDOW.as_secs_f64();
    let won = sqlx::query_file_scalar!("sql/claim_dedup_ids.sql", queue, &ids[..], window)
        .fetch_all(pool)
        .await?;
    Ok(!won.is_empty())
}

/// Whether `claim` on `queue` is held.
pub(crate) async fn held(pool: &PgPool, queue: &str, claim: Claim) -> Result<bool> {
    let held = sqlx::query_scalar!(
        r#"select exists(select from queue_sqs_dedup where queue = $1 and dedup_id = $2 and expires_at > now()) as "held!""#,
        queue,
        claim.id()
    )
    .fetch_one(pool)
    .await?;
    Ok(held)
}

/// Forgets `queue`'s deduplication ids, keeping its claims.
pub(crate) async fn forget_deduplication(pool: &PgPool, queue: &str) -> Result<()> {
    sqlx::query!(
        "delete from queue_sqs_dedup where queue = $1 and dedup_id not like E'\\x02%'",
        queue
    )
    .execute(pool)
    .await?;
    Ok(())
}
