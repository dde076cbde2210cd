//! Upkeep: body partitions ahead of the id sequence, retention of live
//! messages, and dropping expired bodies a partition at a time.
//!
//! Any number of processes may run [`run`]; the work is idempotent and the
//! partition functions serialise themselves with an advisory lock.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::Result;

/// Makes sure body partitions exist for the next ids. Returns how many it made.
pub async fn ensure_partitions(pool: &PgPool) -> Result<i32> {
    Ok(
        sqlx::query_scalar!(r#"select queue_ensure_partitions() as "made!""#)
            .fetch_one(pool)
            .await?,
    )
}

/// Deletes live messages older than their queue's retention, oldest first,
/// at most `limit` per call. Returns how many.
pub async fn expire_messages(pool: &PgPool, limit: i64) -> Result<u64> {
    // Messages of a queue are enqueued in id order, so the expired ones are
    // at the head of its index: no full scan.
    Ok(sqlx::query!(
        r#"
        delete from queue_messages m
        using (
            select e.queue_id, e.id
            from queue_queues q
            cross join lateral (
                select queue_id, id from queue_messages
                where queue_id = q.id
                  and enqueued_at < now() - make_interval(secs => q.retention_ms::float8 / 1000)
                order by id + 0
                limit $1
            ) e
        ) x
        where m.queue_id = x.queue_id and m.id = x.id
        "#,
        limit
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// Drops body partitions that no live message needs and that are older than
/// every queue's retention and rewind window. Returns how many.
pub async fn drop_expired_bodies(pool: &PgPool) -> Result<i32> {
    Ok(sqlx::query_scalar!(
        r#"
        select queue_drop_expired_partitions(make_interval(secs => coalesce(
            (select max(greatest(retention_ms, rewind_window_ms)) from queue_queues), 0
        )::float8 / 1000)) as "dropped!"
        "#
    )
    .fetch_one(pool)
    .await?)
}

/// Runs every maintenance task each `every` until `shutdown`.
pub async fn run(pool: PgPool, every: Duration, shutdown: CancellationToken) {
    loop {
        let result = async {
            ensure_partitions(&pool).await?;
            while expire_messages(&pool, 10_000).await? == 10_000 {}
            drop_expired_bodies(&pool).await?;
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
