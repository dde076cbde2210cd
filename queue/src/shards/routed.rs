//! Operations on one queue across the shards it lives on.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::{Part, Route, Router, State};
use crate::attributes::MAX_WAIT;
use crate::notify::FALLBACK_POLL;
use crate::{
    DeleteOutcome, Error, Message, NewMessage, Queue, QueueKind, Receipt, Result, RewindTo, Stats,
};

/// Where a sent message went: ids are unique within a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageRef {
    pub shard: i32,
    pub id: i64,
}

impl fmt::Display for MessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shard != 0 {
            write!(f, "{}:", self.shard)?;
        }
        write!(f, "{}", self.id)
    }
}

/// A queue reached through a [`Router`]: the same operations as
/// [`crate::Queue`], over every part of the queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Routed {
    pub(super) router: Router,
    pub(super) name: String,
}

/// The group an ordered message's shard is chosen by: a hash every process
/// agrees on, whatever its build (std's hasher promises no such thing).
fn group_slot(group: Option<&str>, parts: usize) -> usize {
    crc32fast::hash(group.unwrap_or_default().as_bytes()) as usize % parts
}

impl Routed {
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn route(&self) -> Result<std::sync::Arc<Route>> {
        self.router.route(&self.name, false).await
    }

    /// Sends up to 1000 messages. A concurrent queue's batch goes whole to
    /// one active part, round-robin, skipping parts whose shard is down. An
    /// ordered queue's messages go to the part their group hashes to, so a
    /// group's order holds; a group whose shard is down cannot be sent to.
    /// When a batch spans shards and only some took theirs, the error is
    /// [`Error::PartlySent`], saying which messages went.
    pub async fn send_batch(&self, messages: &[NewMessage]) -> Result<Vec<MessageRef>> {
        let route = self.route().await?;
        let active = route.active();
        if route.kind == QueueKind::Concurrent {
            return self.send_round_robin(&active, messages).await;
        }
        let mut by_part: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            let slot = group_slot(m.group.as_deref(), active.len());
            by_part.entry(slot).or_default().push(i);
        }
        let sends = by_part.iter().map(|(&slot, indices)| {
            let batch: Vec<NewMessage> = indices.iter().map(|&i| messages[i].clone()).collect();
            send_to(active[slot], batch)
        });
        let results = futures::future::join_all(sends).await;
        let mut sent = vec![None; messages.len()];
        let mut failure = None;
        for ((_, indices), result) in by_part.iter().zip(results) {
            match result {
                Ok(refs) => {
                    for (&i, r) in indices.iter().zip(refs) {
                        sent[i] = Some(r);
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            None => Ok(sent.into_iter().flatten().collect()),
            Some(e) if sent.iter().all(Option::is_none) => Err(e),
            Some(e) => Err(Error::PartlySent {
                sent,
                cause: Box::new(e),
            }),
        }
    }

    async fn send_round_robin(
        &self,
        active: &[&Part],
        messages: &[NewMessage],
    ) -> Result<Vec<MessageRef>> {
        let start = self.router.next_turn();
        let mut last = None;
        for i in 0..active.len() {
            let part = active[(start + i) % active.len()];
            if !part.shard.usable() || part.queue.is_none() {
                last = Some(Error::ShardUnavailable(part.shard.name.clone()));
                continue;
            }
            match send_to(part, messages.to_vec()).await {
                Err(e @ Error::ShardUnavailable(_)) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| Error::QueueNotFound(self.name.clone())))
    }

    /// The part on `shard` (active or draining), for work in a transaction
    /// of that shard's database: deleting received messages together with
    /// the caller's own writes, say. `None` when the queue has no such part.
    pub async fn part_on(&self, shard: i32) -> Result<Option<Queue>> {
        let route = self.route().await?;
        Ok(route
            .live()
            .find(|p| p.shard.id == shard)
            .and_then(|p| p.queue.clone()))
    }

    /// The part on `shard` if sends may go there now, for sending in a
    /// transaction of that shard's database (with
    /// [`Queue::send_batch_in`]): an active part, of a concurrent queue or
    /// of an ordered one on that shard alone (a spread ordered queue's
    /// groups go where they hash).
    pub async fn sends_on(&self, shard: i32) -> Result<Option<Queue>> {
        let route = self.route().await?;
        let active = route.active();
        if route.kind == QueueKind::Ordered && active.len() > 1 {
            return Ok(None);
        }
        Ok(active
            .into_iter()
            .find(|p| p.shard.id == shard)
            .and_then(|p| p.queue.clone()))
    }

    /// Sends one message.
    pub async fn send(&self, body: impl Into<String>) -> Result<MessageRef> {
        let refs = self.send_batch(&[NewMessage::new(body)]).await?;
        Ok(refs[0])
    }

    /// Leases up to `max` messages for `lock`, drawing from the parts in
    /// turn (each call starts at the next one, so no part is favoured) until
    /// `max` are found. Parts whose shard is down are skipped; only when
    /// every part is down does this fail.
    pub async fn receive(&self, max: usize, lock: Duration) -> Result<Vec<Message>> {
        let route = self.route().await?;
        let parts = route.readable();
        let start = self.router.next_turn();
        let mut messages = Vec::new();
        let mut reached = false;
        let mut last = None;
        for i in 0..parts.len() {
            if messages.len() == max && max > 0 {
                break;
            }
            let part = parts[(start + i) % parts.len()];
            let (Some(queue), true) = (&part.queue, part.shard.usable()) else {
                last = Some(Error::ShardUnavailable(part.shard.name.clone()));
                continue;
            };
            match part.shard.watch(queue.receive(max - messages.len(), lock).await) {
                Ok(found) => {
                    reached = true;
                    messages.extend(found);
                }
                Err(e @ Error::ShardUnavailable(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        match last {
            Some(e) if !reached => Err(e),
            _ => Ok(messages),
        }
    }

    /// Like [`Routed::receive`], waiting up to `wait` when nothing is
    /// visible; a send to any part wakes it.
    pub async fn receive_wait(
        &self,
        max: usize,
        lock: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>> {
        if wait > MAX_WAIT {
            return Err(Error::InvalidArgument {
                field: "wait",
                message: "must be between 0 and 30 s".into(),
            });
        }
        let deadline = Instant::now() + wait;
        loop {
            let route = self.route().await?;
            let waiters: Vec<_> = route
                .readable()
                .into_iter()
                .filter_map(|p| p.queue.as_ref())
                .map(|q| q.inner.hub.waiter(q.id()))
                .collect();
            // Registered before looking, so a send between the look and the
            // wait still wakes us.
            let mut notified: Vec<_> = waiters.iter().map(|w| Box::pin(w.notified())).collect();
            for n in &mut notified {
                n.as_mut().enable();
            }
            let messages = self.receive(max, lock).await?;
            let now = Instant::now();
            if !messages.is_empty() || now >= deadline {
                return Ok(messages);
            }
            let nap = (deadline - now).min(FALLBACK_POLL);
            if notified.is_empty() {
                tokio::time::sleep(nap).await;
            } else {
                let _ = tokio::time::timeout(nap, futures::future::select_all(notified)).await;
            }
        }
    }

    /// The part a receipt's message lives on, retired ones included, or the
    /// queue on that shard when this router has not seen the part yet.
    async fn part_of(&self, route: &Route, shard: i32) -> Result<Queue> {
        if let Some(q) = route
            .parts
            .iter()
            .find(|p| p.shard.id == shard)
            .and_then(|p| p.queue.clone())
        {
            return Ok(q);
        }
        let fresh = self.router.route(&self.name, true).await?;
        fresh
            .parts
            .iter()
            .find(|p| p.shard.id == shard)
            .and_then(|p| p.queue.clone())
            .ok_or(Error::StaleReceipt)
    }

    /// Deletes up to 1000 messages by receipt, each on the shard its receipt
    /// names.
    pub async fn delete_batch(&self, receipts: &[Receipt]) -> Result<DeleteOutcome> {
        let route = self.route().await?;
        let mut by_shard: BTreeMap<i32, Vec<Receipt>> = BTreeMap::new();
        for r in receipts {
            by_shard.entry(r.shard).or_default().push(*r);
        }
        let mut outcome = DeleteOutcome::default();
        for (shard, receipts) in by_shard {
            let part = match self.part_of(&route, shard).await {
                Ok(q) => q,
                Err(Error::StaleReceipt) => {
                    outcome.stale.extend(receipts);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let done = self.watch(&route, shard, part.delete_batch(&receipts).await)?;
            outcome.deleted.extend(done.deleted);
            outcome.stale.extend(done.stale);
        }
        Ok(outcome)
    }

    /// Deletes the message leased under `receipt`.
    pub async fn delete(&self, receipt: &Receipt) -> Result<()> {
        let outcome = self.delete_batch(std::slice::from_ref(receipt)).await?;
        if outcome.deleted.is_empty() {
            return Err(Error::StaleReceipt);
        }
        Ok(())
    }

    /// Extends or releases the lease of `receipt` (see
    /// [`crate::Queue::change_visibility`]).
    pub async fn change_visibility(&self, receipt: &Receipt, lock: Duration) -> Result<()> {
        let route = self.route().await?;
        let part = self.part_of(&route, receipt.shard).await?;
        let result = part.change_visibility(receipt, lock).await;
        self.watch(&route, receipt.shard, result)
    }

    fn watch<T>(&self, route: &Route, shard: i32, result: Result<T>) -> Result<T> {
        match route.parts.iter().find(|p| p.shard.id == shard) {
            Some(p) => p.shard.watch(result),
            None => result,
        }
    }

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
        let with_queue: Vec<&Part> = route.parts.iter().filter(|p| p.queue.is_some()).collect();
        if matches!(to, RewindTo::Id(_)) && route.parts.len() > 1 {
            return Err(Error::InvalidArgument {
                field: "to",
                message: "message ids are per shard and this queue has several; rewind to a time"
                    .into(),
            });
        }
        let mut total = 0;
        for part in with_queue {
            let queue = part.queue.as_ref().expect("filtered");
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
        let route = self.route().await?;
        let mut total = 0;
        for part in route.live() {
            if let Some(queue) = &part.queue {
                total += part.shard.watch(queue.redrive().await)?;
            }
        }
        Ok(total)
    }

    /// Deletes every live message on every part; returns how many.
    pub async fn purge(&self) -> Result<u64> {
        let route = self.route().await?;
        let mut total = 0;
        for part in route.live() {
            if let Some(queue) = &part.queue {
                total += part.shard.watch(queue.purge().await)?;
            }
        }
        Ok(total)
    }
}

async fn send_to(part: &Part, batch: Vec<NewMessage>) -> Result<Vec<MessageRef>> {
    let queue = part
        .queue
        .as_ref()
        .filter(|_| part.shard.usable())
        .ok_or_else(|| Error::ShardUnavailable(part.shard.name.clone()))?;
    let ids = part.shard.watch(queue.send_batch(&batch).await)?;
    Ok(ids
        .into_iter()
        .map(|id| MessageRef {
            shard: part.shard.id,
            id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_always_hashes_to_the_same_part() {
        // Fixed values: every process, of any build, must agree.
        assert_eq!(group_slot(Some("album-7"), 3), group_slot(Some("album-7"), 3));
        assert_eq!(group_slot(None, 3), group_slot(Some(""), 3));
        let spread: std::collections::HashSet<_> = (0..100)
            .map(|i| group_slot(Some(&format!("g{i}")), 3))
            .collect();
        assert_eq!(spread.len(), 3, "groups use every part");
    }

    #[test]
    fn message_refs_name_their_shard_unless_it_is_the_control_database() {
        assert_eq!(MessageRef { shard: 0, id: 7 }.to_string(), "7");
        assert_eq!(MessageRef { shard: 2, id: 7 }.to_string(), "2:7");
    }
}
