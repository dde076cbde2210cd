//! Stats, rewind, redrive and purge of a queue, over every part.

use super::{Routed, State};
use crate::{Error, Queue, Result, RewindTo, Stats};

impl Routed {
    /// The queue's figures summed over its parts; the age is the oldest
    /// part's. Fails when a part cannot be reached: a sum without it would
    /// mislead.
    pub async fn stats(&self) -> Result<Stats> {
        let route = self.route().await?;
        let mut total = Stats::default();
        for part in route.live() {
            let queue = part
                .queue
                .as_ref()
                .ok_or_else(|| Error::ShardUnavailable(part.shard.name.clone()))?;
            let s = part.shard.watch(queue.stats().await)?;
            total.visible += s.visible;
            total.in_flight += s.in_flight;
            total.delayed += s.delayed;
            total.dead_lettered += s.dead_lettered;
            total.oldest_age = total.oldest_age.max(s.oldest_age);
        }
        Ok(total)
    }

    /// Rewinds every part, retired ones included: a retired part that gets
    /// messages back is draining again, so receivers find them. Rewinding to
    /// an id is refused for a queue on several shards, whose ids are per
    /// shard; rewind to a time.
    pub async fn rewind(&self, to: RewindTo) -> Result<u64> {
        let route = self.router.route(&self.name, true).await?;
        if matches!(to, RewindTo::Id(_)) && route.parts.len() > 1 {
            return Err(Error::InvalidArgument {
                field: "to",
                message: "message ids are per shard and this queue has several; rewind to a time"
                    .into(),
            });
        }
        let mut total = 0;
        for part in &route.parts {
            let Some(queue) = &part.queue else { continue };
            let n = part.shard.watch(queue.rewind(to).await)?;
            if n > 0 && part.state == State::Retired {
                self.router.revive(&self.name, part.shard.id).await?;
            }
            total += n;
        }
        Ok(total)
    }

    /// Moves dead-lettered messages back into the queue on every shard
    /// (each part's dead letter queue is on its own shard).
    pub async fn redrive(&self) -> Result<u64> {
        self.sum(|q| async move { q.redrive().await }).await
    }

    /// Deletes every live message on every part; returns how many.
    pub async fn purge(&self) -> Result<u64> {
        self.sum(|q| async move { q.purge().await }).await
    }

    /// The sum of `count` over the parts that can be reached.
    async fn sum<F, Fut>(&self, count: F) -> Result<u64>
    where
        F: Fn(Queue) -> Fut,
        Fut: Future<Output = Result<u64>>,
    {
        let route = self.route().await?;
        let mut total = 0;
        for part in route.live() {
            if let Some(queue) = &part.queue {
                total += part.shard.watch(count(queue.clone()).await)?;
            }
        }
        Ok(total)
    }
}
