//! What an app does on a routed queue alongside its own writes: sends that
//! commit with its rows, deletes in its transaction, replies sent and
//! requests deleted together. In one transaction wherever the queue has a
//! part in the control database (always, without shards); otherwise as
//! close as the shards allow, in the order that repeats work rather than
//! losing it. Which shard a message is on stays the router's business.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::Routed;
use crate::{MAX_BATCH, NewMessage, Receipt, Result};

/// The control database's shard id: a queue with no placement lives there.
const CONTROL: i32 = 0;

impl Routed {
    /// Sends `messages` as part of `tx`, a transaction on the control
    /// database; receivers wake when it commits. A queue that takes no
    /// sends there gets them now, before `tx` commits: if the commit then
    /// fails, messages went out for rows that never were, so their
    /// receivers must take that in their stride — work repeated, never lost.
    pub async fn send_batch_in(
        &self,
        tx: &mut PgConnection,
        messages: &[NewMessage],
    ) -> Result<()> {
        let Some(here) = self.sends_on(CONTROL).await? else {
            for chunk in messages.chunks(MAX_BATCH) {
                self.send_batch(chunk).await?;
            }
            return Ok(());
        };
        for chunk in messages.chunks(MAX_BATCH) {
            here.send_batch_in(&mut *tx, chunk).await?;
        }
        here.notify_in(tx).await
    }

    /// Deletes, as part of `tx` (on the control database), the messages of
    /// `receipts` that live there; returns the others, for
    /// [`Routed::delete_batch`] once `tx` has committed (a crash between
    /// the two delivers them again). A receipt of a part since retired is
    /// dropped: its lease went with the part.
    pub async fn delete_batch_in(
        &self,
        tx: &mut PgConnection,
        receipts: &[Receipt],
    ) -> Result<Vec<Receipt>> {
        let (here, elsewhere): (Vec<Receipt>, Vec<Receipt>) =
            receipts.iter().partition(|r| r.shard == CONTROL);
        if !here.is_empty()
            && let Some(part) = self.part_on(CONTROL).await?
        {
            part.delete_batch_in(tx, &here).await?;
        }
        Ok(elsewhere)
    }

    /// Sends `replies` to `to` and deletes the messages leased under
    /// `receipts` (pairwise); returns the stale receipts. Where a message's
    /// shard also takes `to`'s sends (always, with one database), both
    /// happen in one statement there. Otherwise the replies go first: a
    /// crash in between delivers the message again and its reply twice.
    /// Like [`crate::Queue::reply_batch`], the replies wake no long poll.
    pub async fn reply_batch(
        &self,
        receipts: &[Receipt],
        to: &Routed,
        replies: &[NewMessage],
    ) -> Result<Vec<Receipt>> {
        let mut by_shard: BTreeMap<i32, (Vec<Receipt>, Vec<NewMessage>)> = BTreeMap::new();
        for (receipt, reply) in receipts.iter().zip(replies) {
            let (r, b) = by_shard.entry(receipt.shard).or_default();
            r.push(*receipt);
            b.push(reply.clone());
        }
        let mut stale = Vec::new();
        for (shard, (receipts, replies)) in by_shard {
            let Some(part) = self.part_on(shard).await? else {
                // The part was retired: these leases are long gone.
                stale.extend(receipts);
                continue;
            };
            match to.sends_on(shard).await? {
                Some(to_part) => {
                    stale.extend(part.reply_batch(&receipts, &to_part, &replies).await?.stale);
                }
                None => {
                    to.send_batch(&replies).await?;
                    stale.extend(part.delete_batch(&receipts).await?.stale);
                }
            }
        }
        Ok(stale)
    }
}
