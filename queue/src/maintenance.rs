//! Upkeep: body partitions ahead of the id sequence, retention of live
//! messages (dropped, or moved to the dead letter queue when there is one), dropping expired bodies a partition at a time, sweeping spent
//! counters and SQS deduplication ids, and vacuuming the tables that churn.
//!
//! Any number of processes may run [`Maintenance::run`]; the work is
//! idempotent and the partition functions serialise themselves with an
//! advisory lock.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::Result;

/// Upkeep of every queue of one database.
#[derive(Clone, Debug)]
pub struct Maintenance {
    pool: PgPool,
}

impl Maintenance {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Makes sure body partitions exist for the next ids. Returns how many it made.
    pub async fn ensure_partitions(&self) -> Result<i32> {
        Ok(
            sqlx::query_scalar!(r#"select queue_ensure_partitions() as "made!""#)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Deletes live messages older than their queue's retention, oldest first,
    /// at most `limit` rows per call, from queues without a dead letter queue
    /// (see [`Maintenance::dead_letter_expired`] for the others). Returns how many rows.
    pub async fn expire_messages(&self, limit: i64) -> Result<u64> {
        // Messages of a queue are enqueued in id order, so the expired ones are
        // at the head of its index: no full scan.
        let rows = sqlx::query_file_scalar!("sql/expire_messages.sql", limit)
            .fetch_one(&self.pool)
            .await?;
        Ok(rows as u64)
    }

    /// Moves live messages older than their queue's retention to its dead letter
    /// queue, oldest first, at most `limit` rows per call, marked `expired`:
    /// a queue with a dead letter queue loses nothing to retention, and whoever
    /// watches the dead letters learns what was never processed. Returns how
    /// many rows.
    pub async fn dead_letter_expired(&self, limit: i64) -> Result<u64> {
        // Rows are locked while they are read, so the counters below are
        // corrected from the values the move really replaces; rows a receiver
        // holds this instant are left for the next round.
        let rows = sqlx::query_file_scalar!("sql/dead_letter_expired.sql", limit)
            .fetch_one(&self.pool)
            .await?;
        Ok(rows as u64)
    }

    /// Drops body partitions that no live message needs and that are older than
    /// every queue's retention and rewind window. Returns how many.
    pub async fn drop_expired_bodies(&self) -> Result<i32> {
        Ok(sqlx::query_file_scalar!("sql/drop_expired_bodies.sql")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Keeps the counters small: deletes buckets whose second has passed
    /// (nothing writes them again) and the counters of deleted queues, and folds
    /// the totals written by backends that are gone into slot 0. Returns how many
    /// rows it removed.
    pub async fn sweep_counters(&self) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let swept = sqlx::query_file!("sql/sweep_counters.sql")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let folded = sqlx::query_file_scalar!("sql/fold_counters.sql")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(swept + folded as u64)
    }

    /// Forgets FIFO deduplication ids whose five minutes are over (the SQS
    /// endpoint's, see `sqs::fifo`). Returns how many.
    pub async fn sweep_deduplication(&self) -> Result<u64> {
        Ok(
            sqlx::query!("delete from queue_sqs_dedup where expires_at < now()")
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Vacuums the two tables that churn, `queue_messages` and
    /// `queue_counters`, once they have gathered dead rows (10% of their live
    /// ones, at least 1000). The queue does not rely on autovacuum, which a
    /// server may have turned off (this one's CI has): without vacuum, freed
    /// space is never reused and a busy queue's tables grow without end. Vacuum
    /// skips pages with nothing to clean, so this costs little even with a huge
    /// backlog. Returns how many tables it vacuumed.
    pub async fn vacuum(&self) -> Result<u32> {
        let due = sqlx::query_file_scalar!("sql/tables_to_vacuum.sql")
            .fetch_all(&self.pool)
            .await?;
        let mut vacuumed = 0;
        for table in due {
            let statement = match table.as_str() {
                "queue_messages" => "vacuum (skip_locked) queue_messages",
                _ => "vacuum (skip_locked) queue_counters",
            };
            sqlx::query(statement).execute(&self.pool).await?;
            vacuumed += 1;
        }
        Ok(vacuumed)
    }

    /// Runs every task each `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        loop {
            let result = async {
                self.ensure_partitions().await?;
                while self.expire_messages(10_000).await? == 10_000 {}
                while self.dead_letter_expired(10_000).await? == 10_000 {}
                self.drop_expired_bodies().await?;
                self.sweep_counters().await?;
                self.sweep_deduplication().await?;
                self.vacuum().await?;
                Ok::<_, crate::Error>(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "queue maintenance failed; will retry");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}
