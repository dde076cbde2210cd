//! Shards and placements in the control database.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

use super::{Router, State};
use crate::{Error, MIGRATOR, QueueKind, Result};

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
        // Ids are small and dense: a receipt carries one.
        let id = sqlx::query_scalar!(
            r#"
            insert into queue_shards (id, name, url)
            select coalesce(max(id), 0) + 1, $1, $2 from queue_shards
            returning id
            "#,
            name,
            url
        )
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
        Ok(sqlx::query_as!(
            ShardInfo,
            r#"
            select s.id, s.name, s.url,
                   (select count(*) from queue_placements p
                    where p.shard_id = s.id and p.state <> 'retired') as "queues!"
            from queue_shards s order by s.id
            "#
        )
        .fetch_all(self.inner.control.pool())
        .await?)
    }

    /// Places queue `name` on the shards named `targets`: on one (a move, if
    /// it lived elsewhere) or spread over several. The queue is created on
    /// each target with its attributes (its dead letter queue too, which is
    /// then also placed on them, as each part dead-letters on its own
    /// shard). Parts not among the targets become draining: receivers empty
    /// them, and [`Router::settle`] retires them. Nothing is copied, so the
    /// change takes effect at once whatever the backlog.
    ///
    /// An ordered queue holding messages may only move to shards it is not
    /// on: its groups are hashed over its parts, and a group whose messages
    /// were on two parts at once could be delivered out of order.
    pub async fn place(&self, name: &str, targets: &[&str]) -> Result<()> {
        let route = self.route(name, true).await?;
        let target_ids = self.shard_ids(targets).await?;
        let source = route
            .parts
            .iter()
            .filter(|p| p.state != State::Retired)
            .find_map(|p| p.queue.clone())
            .ok_or_else(|| Error::QueueNotFound(name.to_owned()))?;
        let attributes = source.attributes().clone();
        if attributes.kind == QueueKind::Ordered {
            let current: BTreeSet<i32> = route
                .parts
                .iter()
                .filter(|p| p.state != State::Retired)
                .map(|p| p.shard.id)
                .collect();
            let targets: BTreeSet<i32> = target_ids.iter().map(|(id, _)| *id).collect();
            if current != targets
                && !current.is_disjoint(&targets)
                && self.open(name).await?.holds_something().await?
            {
                return Err(Error::InvalidArgument {
                    field: "shards",
                    message: format!(
                        "`{name}` is an ordered queue holding messages: move it to shards it is \
                         not on, or wait until it is empty"
                    ),
                });
            }
        }
        self.put_on(name, &attributes, &target_ids).await?;
        self.write_placement(name, &target_ids, true).await?;
        self.forget_route(name);
        Ok(())
    }

    /// Creates queue `name` straight on the shards named `targets`, as
    /// [`Router::place`] would put it there, but with no earlier home to
    /// drain. Refused if the queue exists.
    pub async fn create_on(
        &self,
        name: &str,
        attributes: &crate::QueueAttributes,
        targets: &[&str],
    ) -> Result<()> {
        attributes.validate()?;
        match self.route(name, true).await {
            Err(Error::QueueNotFound(_)) => {}
            Ok(_) => {
                return Err(Error::InvalidArgument {
                    field: "name",
                    message: format!("queue `{name}` exists; use place to move it"),
                });
            }
            Err(e) => return Err(e),
        }
        let target_ids = self.shard_ids(targets).await?;
        self.put_on(name, attributes, &target_ids).await?;
        self.write_placement(name, &target_ids, true).await?;
        self.forget_route(name);
        Ok(())
    }

    /// Creates or updates `name` with `attributes` on each of `targets`,
    /// its dead letter queue first (which is then placed there too, as
    /// each part dead-letters on its own shard).
    async fn put_on(
        &self,
        name: &str,
        attributes: &crate::QueueAttributes,
        targets: &[(i32, String)],
    ) -> Result<()> {
        if let Some(dlq) = &attributes.dead_letter_queue {
            let dlq_attributes = self.open(dlq).await?.attributes().await?;
            for (id, shard_name) in targets {
                let shard = self.shard_by_id(*id, shard_name).await?;
                shard.queues.ensure(dlq, &dlq_attributes).await?;
            }
            if targets.iter().any(|(id, _)| *id != 0) {
                self.write_placement(dlq, targets, false).await?;
                self.forget_route(dlq);
            }
        }
        for (id, shard_name) in targets {
            let shard = self.shard_by_id(*id, shard_name).await?;
            shard.queues.put(name, attributes).await?;
        }
        Ok(())
    }

    /// Creates queue `name`, or updates its attributes, on every part it
    /// has (in the control database when it has none).
    pub async fn put(&self, name: &str, attributes: &crate::QueueAttributes) -> Result<()> {
        let live: Vec<(i32, String)> = match self.route(name, true).await {
            Ok(route) => route
                .live()
                .map(|p| (p.shard.id, p.shard.name.clone()))
                .collect(),
            Err(Error::QueueNotFound(_)) => vec![(0, "control".to_owned())],
            Err(e) => return Err(e),
        };
        self.put_on(name, attributes, &live).await?;
        self.forget_route(name);
        Ok(())
    }

    /// Creates queue `name` with `attributes` in the control database unless
    /// it exists somewhere; never changes an existing queue. Used by
    /// services to declare what they need.
    pub async fn ensure(
        &self,
        name: &str,
        attributes: &crate::QueueAttributes,
    ) -> Result<super::Routed> {
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
        Ok(sqlx::query_scalar!(
            r#"
            select name as "name!" from queue_queues
            union
            select queue from queue_placements where state <> 'retired'
            order by 1
            "#
        )
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
        self.forget_route(name);
        Ok(())
    }

    /// Runs the queue's maintenance (see [`crate::Maintenance`]) on the
    /// control database and on every shard listed when this starts, and
    /// retires drained parts, each `every` until `shutdown`.
    pub async fn maintain(&self, every: Duration, shutdown: CancellationToken) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for s in self.shards().await? {
            let shard = self.shard(s.id, &s.name, s.url.as_deref())?;
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
        Ok(())
    }

    /// Retires draining parts that have been draining for the retire delay
    /// and hold no message; returns them as (queue, shard name). Retired
    /// parts found holding messages (a sender that stalled past the retire
    /// delay) are made draining again, so receivers find them. Shards that
    /// cannot be reached are left for the next call.
    pub async fn settle(&self) -> Result<Vec<(String, String)>> {
        let parts = sqlx::query!(
            r#"
            select p.queue, p.shard_id, p.state, p.since
            from queue_placements p
            where p.state = 'retired'
               or (p.state = 'draining' and p.since < now() - make_interval(secs => $1))
            order by p.queue, p.shard_id
            "#,
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
            // Only if nothing changed the placement since it was read.
            let done = sqlx::query!(
                r#"
                update queue_placements set state = 'retired', since = now()
                where queue = $1 and shard_id = $2 and state = 'draining' and since = $3
                "#,
                d.queue,
                d.shard_id,
                d.since
            )
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
        sqlx::query!(
            r#"
            update queue_placements set state = 'draining', since = now()
            where queue = $1 and shard_id = $2 and state = 'retired'
            "#,
            name,
            shard
        )
        .execute(self.inner.control.pool())
        .await?;
        self.forget_route(name);
        Ok(())
    }

    /// Shard ids and names for `names`, each listed once, refusing unknown
    /// ones.
    async fn shard_ids(&self, names: &[&str]) -> Result<Vec<(i32, String)>> {
        let names: Vec<String> = names
            .iter()
            .map(|n| n.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if names.is_empty() {
            return Err(Error::InvalidArgument {
                field: "shards",
                message: "name at least one shard".into(),
            });
        }
        let found = sqlx::query!(
            "select id, name from queue_shards where name = any($1) order by id",
            &names
        )
        .fetch_all(self.inner.control.pool())
        .await?;
        if let Some(missing) = names.iter().find(|n| !found.iter().any(|f| &f.name == *n)) {
            return Err(Error::InvalidArgument {
                field: "shards",
                message: format!("no shard named `{missing}`; see `darkroom-queue shard list`"),
            });
        }
        Ok(found.into_iter().map(|f| (f.id, f.name)).collect())
    }

    async fn shard_by_id(&self, id: i32, name: &str) -> Result<std::sync::Arc<super::Shard>> {
        let url = sqlx::query_scalar!("select url from queue_shards where id = $1", id)
            .fetch_one(self.inner.control.pool())
            .await?;
        self.shard(id, name, url.as_deref())
    }

    /// Makes `targets` active parts of `name`. With `exclusive`, its other
    /// parts become draining; without, they are left as they are (a dead
    /// letter queue serves every part of its sources). A queue with no
    /// placement yet lived on shard 0 if it existed, which is written out
    /// first.
    async fn write_placement(
        &self,
        name: &str,
        targets: &[(i32, String)],
        exclusive: bool,
    ) -> Result<()> {
        let ids: Vec<i32> = targets.iter().map(|(id, _)| *id).collect();
        let mut tx = self.inner.control.pool().begin().await?;
        sqlx::query!(
            r#"
            insert into queue_placements (queue, shard_id, state)
            select $1, 0, 'active'
            where not exists (select 1 from queue_placements where queue = $1)
              and exists (select 1 from queue_queues where name = $1)
            "#,
            name
        )
        .execute(&mut *tx)
        .await?;
        if exclusive {
            sqlx::query!(
                r#"
                update queue_placements set state = 'draining', since = now()
                where queue = $1 and state = 'active' and shard_id <> all($2)
                "#,
                name,
                &ids
            )
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query!(
            r#"
            insert into queue_placements (queue, shard_id, state)
            select $1, unnest($2::int4[]), 'active'
            on conflict (queue, shard_id) do update
                set state = 'active', since = now()
                where queue_placements.state <> 'active'
            "#,
            name,
            &ids
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl super::Routed {
    /// Whether any part holds a live message.
    async fn holds_something(&self) -> Result<bool> {
        let route = self.router.route(&self.name, true).await?;
        for part in route.live() {
            let queue = part
                .queue
                .as_ref()
                .ok_or_else(|| Error::ShardUnavailable(part.shard.name.clone()))?;
            if !part.shard.watch(queue.holds_nothing().await)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The queue's attributes, as its first reachable part has them.
    pub async fn attributes(&self) -> Result<crate::QueueAttributes> {
        let route = self.router.route(&self.name, true).await?;
        route
            .live()
            .find_map(|p| p.queue.as_ref().map(|q| q.attributes().clone()))
            .ok_or_else(|| Error::QueueNotFound(self.name.clone()))
    }
}
