//! Jobs expire: once a job's `expires_at` has passed (`DARKROOM_JOB_TTL`
//! after creation), the sweeper deletes its S3 objects, then its rows.
//!
//! Objects go first: a sweep cut short leaves rows that the next sweep
//! finds again, never objects that nothing points to. Every object of a job
//! lives under `jobs/{job}/`, so one prefix delete takes originals, outputs
//! and any object whose row was never written. A result a worker stores after
//! its job was swept is deleted by the response consumer, which finds no
//! output to give it to. Any number of web processes may sweep at once: each
//! locks the jobs it takes, skipping those another holds.

use std::time::Duration;

use common::storage::Storage;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Jobs swept per transaction.
const BATCH: i64 = 20;

/// Sweeps every `every` until `shutdown`.
pub async fn run(pool: PgPool, storage: Storage, every: Duration, shutdown: CancellationToken) {
    loop {
        match sweep(&pool, &storage).await {
            Ok(0) => {}
            Ok(n) => info!(jobs = n, "expired jobs deleted"),
            Err(e) => warn!(
                error = format!("{e:#}"),
                "sweeping expired jobs failed; will retry"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Deletes every expired job, its rows and its objects. Returns how many.
pub async fn sweep(pool: &PgPool, storage: &Storage) -> anyhow::Result<usize> {
    let mut swept = 0;
    let topics = queue::Topics::new(queue::Queues::new(pool.clone()));
    loop {
        let mut tx = pool.begin().await?;
        let jobs = sqlx::query_file_scalar!("sql/expired_jobs.sql", BATCH)
            .fetch_all(&mut *tx)
            .await?;
        delete_jobs(&mut tx, storage, &topics, &jobs).await?;
        tx.commit().await?;
        swept += jobs.len();
        if (jobs.len() as i64) < BATCH {
            return Ok(swept);
        }
    }
}

/// Deletes `jobs`, locked by `tx`: their S3 objects now, their rows (images
/// and outputs go with their job, on delete cascade) and their webhooks'
/// subscriptions when `tx` commits. Also what `DELETE /api/jobs/{id}` does.
pub async fn delete_jobs(
    tx: &mut sqlx::PgConnection,
    storage: &Storage,
    topics: &queue::Topics,
    jobs: &[uuid::Uuid],
) -> anyhow::Result<()> {
    for job in jobs {
        storage.delete_prefix(&format!("jobs/{job}/")).await?;
    }
    sqlx::query!("delete from jobs where id = any($1)", jobs)
        .execute(&mut *tx)
        .await?;
    let hooks: Vec<String> = jobs
        .iter()
        .map(|j| crate::webhooks::subscription(*j))
        .collect();
    topics
        .unsubscribe_in(tx, common::protocol::EVENTS_TOPIC, &hooks)
        .await?;
    Ok(())
}
