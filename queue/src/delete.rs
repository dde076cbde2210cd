//! Acknowledging messages.

use std::collections::HashSet;

use uuid::Uuid;

use crate::attributes::check_batch;
use crate::{Error, Queue, Receipt, Result};

/// Which receipts of a batch delete took effect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub deleted: Vec<Receipt>,
    /// Receipts whose lease expired or whose message was received again.
    pub stale: Vec<Receipt>,
}

impl Queue {
    /// Deletes the message leased under `receipt`.
    ///
    /// Fails with [`Error::StaleReceipt`] when the lease is no longer current,
    /// so a slow receiver never deletes a message another one now holds.
    pub async fn delete(&self, receipt: &Receipt) -> Result<()> {
        let outcome = self.delete_batch(std::slice::from_ref(receipt)).await?;
        if outcome.deleted.is_empty() {
            return Err(Error::StaleReceipt);
        }
        Ok(())
    }

    /// Deletes up to 1000 messages by receipt in one statement.
    pub async fn delete_batch(&self, receipts: &[Receipt]) -> Result<DeleteOutcome> {
        check_batch("receipts", receipts.len())?;
        let ids: Vec<i64> = receipts.iter().map(|r| r.id).collect();
        let leases: Vec<Uuid> = receipts.iter().map(|r| r.lease).collect();
        // Found through the primary key on id (`queue_id + 0` is not
        // indexable), so the plan stays a lookup per receipt whatever the
        // planner believes about the queue's size.
        let deleted = sqlx::query!(
            r#"
            delete from queue_messages m
            where m.id = any($2::bigint[]) and m.queue_id + 0 = $1
              and m.visible_at > now()
              and exists (
                  select 1 from unnest($2::bigint[], $3::uuid[]) as r(id, lease)
                  where r.id = m.id and r.lease = m.lease
              )
            returning m.id, m.lease as "lease!"
            "#,
            self.id(),
            &ids,
            &leases,
        )
        .fetch_all(&self.pool)
        .await?;
        let deleted: HashSet<Receipt> = deleted
            .into_iter()
            .map(|r| Receipt {
                id: r.id,
                lease: r.lease,
            })
            .collect();
        let (deleted, stale) = receipts.iter().partition(|r| deleted.contains(r));
        Ok(DeleteOutcome { deleted, stale })
    }
}
