//! Retiring drained parts, and the maintenance of every shard.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Router, State};
use crate::{Error, Result};

impl Router {
    /// Runs the queue's maintenance (see [`crate::Maintenance`]) on the
    /// control database and on every shard listed when this starts, and
    /// retires drained parts, each `every` until `shutdown`. Like
    /// `Maintenance::run`, it never gives up: a control database that cannot
    /// be read at start is asked again each `every`.
    pub async fn maintain(&self, every: Duration, shutdown: CancellationToken) {
        let shards = loop {
            match self.shards().await {
                Ok(shards) => break shards,
                Err(e) => tracing::warn!(error = %e, "listing the shards failed; will retry"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for s in shards {
            let shard = match self.shard(s.id, &s.name, s.url.as_deref()) {
                Ok(shard) => shard,
                Err(e) => {
                    tracing::warn!(shard = %s.name, error = %e, "cannot maintain this shard");
                    continue;
                }
            };
            let maintenance = crate::Maintenance::new(shard.queues.pool().clone());
            tasks.spawn(maintenance.run(every, shutdown.clone()));
        }
        loop {
            if let Err(e) = self.settle().await {
                tracing::warn!(error = %e, "retiring drained parts failed; will retry");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => break,
            }
        }
        tasks.join_all().await;
    }

    /// Retires draining parts that have been draining for the retire delay
    /// and hold no message; returns them as (queue, shard name). Retired
    /// parts found holding messages (a sender that stalled past the retire
    /// delay) are made draining again, so receivers find them. Shards that
    /// cannot be reached are left for the next call.
    pub async fn settle(&self) -> Result<Vec<(String, String)>> {
        let parts = sqlx::query_file!(
            "sql/parts_to_settle.sql",
            self.inner.retire_after.as_secs_f64()
        )
        .fetch_all(self.inner.control.pool())
        .await?;
        let mut retired = Vec::new();
        for d in parts {
            let route = self.route(&d.queue, true).await?;
            let Some(part) = route.parts.iter().find(|p| p.shard.id == d.shard_id) else {
                continue;
            };
            let Some(queue) = &part.queue else { continue };
            let empty = match part.shard.watch(queue.holds_nothing().await) {
                Ok(empty) => empty,
                Err(Error::ShardUnavailable(_)) => continue,
                Err(e) => return Err(e),
            };
            if State::parse(&d.state) == State::Retired {
                if !empty {
                    tracing::warn!(queue = %d.queue, shard = %part.shard.name, "a retired part holds messages; draining it again");
                    self.revive(&d.queue, d.shard_id).await?;
                }
                continue;
            }
            if !empty {
                continue;
            }
            let done = sqlx::query_file!("sql/retire_part.sql", d.queue, d.shard_id, d.since)
                .execute(self.inner.control.pool())
                .await?;
            if done.rows_affected() == 1 {
                tracing::info!(queue = %d.queue, shard = %part.shard.name, "retired a drained part");
                retired.push((d.queue.clone(), part.shard.name.clone()));
                self.forget_route(&d.queue);
            }
        }
        Ok(retired)
    }

    /// Whether queue `name` has no draining part left.
    pub async fn settled(&self, name: &str) -> Result<bool> {
        let draining = sqlx::query_scalar!(
            r#"select count(*) as "n!" from queue_placements where queue = $1 and state = 'draining'"#,
            name
        )
        .fetch_one(self.inner.control.pool())
        .await?;
        Ok(draining == 0)
    }

    /// Makes a retired part draining again (a rewind gave it messages).
    pub(super) async fn revive(&self, name: &str, shard: i32) -> Result<()> {
        sqlx::query_file!("sql/revive_part.sql", name, shard)
            .execute(self.inner.control.pool())
            .await?;
        self.forget_route(name);
        Ok(())
    }
}
