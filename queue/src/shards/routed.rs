//! Operations on one queue across the shards it lives on.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{MessageRef, Part, Route, Router};
use crate::delete::Reclaim;
use crate::long_poll::long_poll;
use crate::{DeleteOutcome, Error, Message, NewMessage, Queue, QueueKind, Receipt, Result};

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

    pub(super) async fn route(&self) -> Result<std::sync::Arc<Route>> {
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
        if active.is_empty() {
            // Placements always keep an active part; a route read mid-change
            // by hand could lack one.
            return Err(Error::QueueNotFound(self.name.clone()));
        }
        if route.kind == QueueKind::Concurrent {
            return self.send_round_robin(&active, messages).await;
        }
        let mut by_part: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            let slot = group_slot(m.group.as_deref(), active.len());
            by_part.entry(slot).or_default().push(i);
        }
        let batches: Vec<(usize, Vec<NewMessage>)> = by_part
            .iter()
            .map(|(&slot, indices)| (slot, indices.iter().map(|&i| messages[i].clone()).collect()))
            .collect();
        let sends = batches
            .iter()
            .map(|(slot, batch)| send_to(active[*slot], batch));
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
            match send_to(part, messages).await {
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

    /// Leases up to `max` messages for `lock` from one part: the first, in
    /// turn, that has any visible (each call starts at the next part, so
    /// none is favoured). It does not top a short batch up from the next
    /// part: that would cost a second statement, which would split the
    /// runs senders batched there (see `Queue::receive`), for messages the
    /// next call gets anyway. Parts whose shard is down are skipped; only
    /// when every part is down does this fail.
    pub async fn receive(&self, max: usize, lock: Duration) -> Result<Vec<Message>> {
        self.receive_from(max, lock, None).await
    }

    /// [`Routed::receive`], or, when the queue has a part on shard `only`,
    /// a receive from that part alone (a long poll woken by a send there:
    /// the other parts were empty a moment ago, and would each cost a
    /// statement to find so again).
    async fn receive_from(
        &self,
        max: usize,
        lock: Duration,
        only: Option<i32>,
    ) -> Result<Vec<Message>> {
        let route = self.route().await?;
        let mut parts = route.readable();
        let start = match only.and_then(|shard| parts.iter().position(|p| p.shard.id == shard)) {
            Some(i) => {
                parts = vec![parts[i]];
                0
            }
            None => self.router.next_turn(),
        };
        let mut reached = false;
        let mut last = None;
        for i in 0..parts.len() {
            let part = parts[(start + i) % parts.len()];
            let (Some(queue), true) = (&part.queue, part.shard.usable()) else {
                last = Some(Error::ShardUnavailable(part.shard.name.clone()));
                continue;
            };
            match part.shard.watch(queue.receive(max, lock).await) {
                Ok(found) if !found.is_empty() => return Ok(found),
                Ok(_) => reached = true,
                Err(e @ Error::ShardUnavailable(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        match last {
            Some(e) if !reached => Err(e),
            _ => Ok(Vec::new()),
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
        // After a wake-up only the part whose send woke the wait is looked
        // at; a wait that runs its course looks at every part.
        let fallback = self.router.control().fallback_poll();
        let parts = || async {
            let route = self.route().await?;
            Ok(route
                .readable()
                .into_iter()
                .filter_map(|p| Some((p.shard.id, p.queue.clone()?)))
                .collect())
        };
        long_poll(wait, fallback, parts, |woken_by| {
            self.receive_from(max, lock, woken_by)
        })
        .await
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
        let mut outcome = DeleteOutcome::default();
        for (shard, receipts) in by_shard(receipts) {
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

    /// [`crate::Queue::reclaim`] on each receipt's part: the receipts that
    /// act now for these messages.
    pub(crate) async fn reclaim(
        &self,
        receipts: &[Receipt],
        rule: Reclaim,
    ) -> Result<Vec<Receipt>> {
        let route = self.route().await?;
        let mut current = Vec::new();
        for (shard, receipts) in by_shard(receipts) {
            match self.part_of(&route, shard).await {
                Ok(part) => {
                    current.extend(self.watch(
                        &route,
                        shard,
                        part.reclaim(&receipts, rule).await,
                    )?);
                }
                Err(Error::StaleReceipt) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(current)
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
}

/// Receipts grouped by the shard their messages live on.
fn by_shard(receipts: &[Receipt]) -> BTreeMap<i32, Vec<Receipt>> {
    let mut out: BTreeMap<i32, Vec<Receipt>> = BTreeMap::new();
    for r in receipts {
        out.entry(r.shard).or_default().push(*r);
    }
    out
}

async fn send_to(part: &Part, batch: &[NewMessage]) -> Result<Vec<MessageRef>> {
    let queue = part
        .queue
        .as_ref()
        .filter(|_| part.shard.usable())
        .ok_or_else(|| Error::ShardUnavailable(part.shard.name.clone()))?;
    let ids = part.shard.watch(queue.send_batch(batch).await)?;
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
        assert_eq!(
            group_slot(Some("album-7"), 3),
            group_slot(Some("album-7"), 3)
        );
        assert_eq!(group_slot(None, 3), group_slot(Some(""), 3));
        let spread: std::collections::HashSet<_> = (0..100)
            .map(|i| group_slot(Some(&format!("g{i}")), 3))
            .collect();
        assert_eq!(spread.len(), 3, "groups use every part");
    }
}
