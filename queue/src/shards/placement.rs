//! Where a queue lives: placing, spreading and moving it over shards.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Router, Shard, State};
use crate::{Error, QueueKind, Result};

impl Router {
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
        let targets = self.shards_named(targets).await?;
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
            let target_ids: BTreeSet<i32> = targets.iter().map(|s| s.id).collect();
            if current != target_ids
                && !current.is_disjoint(&target_ids)
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
        self.put_on(name, &attributes, &targets).await?;
        self.write_placement(name, &targets, true).await?;
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
        let targets = self.shards_named(targets).await?;
        self.put_on(name, attributes, &targets).await?;
        self.write_placement(name, &targets, true).await?;
        self.forget_route(name);
        Ok(())
    }

    /// Creates or updates `name` with `attributes` on each of `targets`,
    /// its dead letter queue first (which is then placed there too, as
    /// each part dead-letters on its own shard).
    pub(super) async fn put_on(
        &self,
        name: &str,
        attributes: &crate::QueueAttributes,
        targets: &[Arc<Shard>],
    ) -> Result<()> {
        if let Some(dlq) = &attributes.dead_letter_queue {
            let dlq_attributes = self.open(dlq).await?.attributes().await?;
            for shard in targets {
                shard.queues.ensure(dlq, &dlq_attributes).await?;
            }
            if targets.iter().any(|s| s.id != 0) {
                self.write_placement(dlq, targets, false).await?;
                self.forget_route(dlq);
            }
        }
        for shard in targets {
            shard.queues.put(name, attributes).await?;
        }
        Ok(())
    }

    /// The shards named `names`, each once, refusing unknown names.
    async fn shards_named(&self, names: &[&str]) -> Result<Vec<Arc<Shard>>> {
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
            "select id, name, url from queue_shards where name = any($1) order by id",
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
        found
            .into_iter()
            .map(|f| self.shard(f.id, &f.name, f.url.as_deref()))
            .collect()
    }

    /// Makes `targets` active parts of `name`. With `exclusive`, its other
    /// parts become draining; without, they are left as they are (a dead
    /// letter queue serves every part of its sources). A queue with no
    /// placement yet lived on shard 0 if it existed, which is written out
    /// first.
    async fn write_placement(
        &self,
        name: &str,
        targets: &[Arc<Shard>],
        exclusive: bool,
    ) -> Result<()> {
        let ids: Vec<i32> = targets.iter().map(|s| s.id).collect();
        let mut tx = self.inner.control.pool().begin().await?;
        sqlx::query_file!("sql/adopt_placement.sql", name)
            .execute(&mut *tx)
            .await?;
        if exclusive {
            sqlx::query_file!("sql/drain_other_parts.sql", name, &ids)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query_file!("sql/activate_parts.sql", name, &ids)
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

    /// The queue's attributes, as its first reachable part has them
    /// (read with its route, so at most the router's TTL old).
    pub async fn attributes(&self) -> Result<crate::QueueAttributes> {
        let route = self.route().await?;
        route
            .live()
            .find_map(|p| p.queue.as_ref().map(|q| q.attributes().clone()))
            .ok_or_else(|| Error::QueueNotFound(self.name.clone()))
    }
}
