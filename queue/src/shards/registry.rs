//! The shards and the queues the control database lists: adding shards,
//! and creating, listing and deleting queues wherever they live.

use sqlx::postgres::PgPoolOptions;

use super::{Routed, Router, State};
use crate::{Error, MIGRATOR, QueueAttributes, Result};

/// A shard as the control database lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ShardInfo {
    pub id: i32,
    pub name: String,
    /// `None` for shard 0, the control database.
    pub url: Option<String>,
    /// Queues with an active or draining part on it.
    pub queues: i64,
}

impl Router {
    /// Registers the cluster at `url` as shard `name`, after applying the
    /// queue's migrations to it.
    pub async fn add_shard(&self, name: &str, url: &str) -> Result<ShardInfo> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|e| Error::InvalidArgument {
                field: "url",
                message: format!("cannot connect to the shard: {e}"),
            })?;
        MIGRATOR.run(&pool).await.map_err(sqlx::Error::from)?;
        pool.close().await;
        let id = sqlx::query_file_scalar!("sql/add_shard.sql", name, url)
            .fetch_one(self.inner.control.pool())
            .await
            .map_err(|e| match e.as_database_error() {
                Some(d) if d.is_unique_violation() => Error::InvalidArgument {
                    field: "name",
                    message: format!("a shard named `{name}` or at that url is already listed"),
                },
                _ => e.into(),
            })?;
        Ok(ShardInfo {
            id,
            name: name.to_owned(),
            url: Some(url.to_owned()),
            queues: 0,
        })
    }

    /// Every shard, the control database first.
    pub async fn shards(&self) -> Result<Vec<ShardInfo>> {
        Ok(sqlx::query_file_as!(ShardInfo, "sql/list_shards.sql")
            .fetch_all(self.inner.control.pool())
            .await?)
    }

    /// Creates queue `name`, or updates its attributes, on every part it
    /// has (in the control database when it has none).
    pub async fn put(&self, name: &str, attributes: &QueueAttributes) -> Result<()> {
        let live: Vec<_> = match self.route(name, true).await {
            Ok(route) => route.live().map(|p| p.shard.clone()).collect(),
            Err(Error::QueueNotFound(_)) => vec![self.shard(0, "control", None)?],
            Err(e) => return Err(e),
        };
        self.put_on(name, attributes, &live).await?;
        self.forget_route(name);
        Ok(())
    }

    /// Creates queue `name` with `attributes` in the control database unless
    /// it exists somewhere; never changes an existing queue. Used by
    /// services to declare what they need.
    pub async fn ensure(&self, name: &str, attributes: &QueueAttributes) -> Result<Routed> {
        match self.open(name).await {
            Err(Error::QueueNotFound(_)) => {}
            other => return other,
        }
        self.inner.control.ensure(name, attributes).await?;
        self.forget_route(name);
        self.open(name).await
    }

    /// Every queue's name: those of the control database and those placed
    /// on shards.
    pub async fn list(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_file_scalar!("sql/list_queue_names.sql")
            .fetch_all(self.inner.control.pool())
            .await?)
    }

    /// Deletes queue `name` and its live messages on every part it has,
    /// then its placement.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let route = self.route(name, true).await?;
        for part in &route.parts {
            if part.queue.is_none() && part.state != State::Retired {
                return Err(Error::ShardUnavailable(part.shard.name.clone()));
            }
        }
        for part in route.parts.iter().filter(|p| p.queue.is_some()) {
            part.shard.watch(part.shard.queues.delete(name).await)?;
        }
        sqlx::query!("delete from queue_placements where queue = $1", name)
            .execute(self.inner.control.pool())
            .await?;
        // What the SQS endpoint kept of it, so a queue made again with this
        // name starts afresh.
        sqlx::query!("delete from queue_sqs_queues where queue = $1", name)
            .execute(self.inner.control.pool())
            .await?;
        sqlx::query!("delete from queue_sqs_dedup where queue = $1", name)
            .execute(self.inner.control.pool())
            .await?;
        self.forget_route(name);
        Ok(())
    }
}
