//! Extending and releasing leases.

use std::time::Duration;

use crate::attributes::MAX_LOCK;
use crate::{Error, Queue, Receipt, Result};

impl Queue {
    /// Sets the lease of `receipt` to end `lock` from now: a heartbeat for long
    /// work, or, with [`Duration::ZERO`], a release that makes the message
    /// visible again at once (and the receipt stale).
    pub async fn change_visibility(&self, receipt: &Receipt, lock: Duration) -> Result<()> {
        if lock > MAX_LOCK {
            return Err(Error::InvalidArgument {
                field: "lock",
                message: "must be at most 12 h".into(),
            });
        }
        // As in delete_batch: a concurrent delete can leave the message alone
        // in its row after this statement chose to move it out; a second
        // statement then finds it alone.
        for _ in 0..2 {
            if self.change_visibility_once(receipt, lock).await? {
                return Ok(());
            }
        }
        Err(Error::StaleReceipt)
    }

    async fn change_visibility_once(&self, receipt: &Receipt, lock: Duration) -> Result<bool> {
        // The lease belongs to the receipt's message alone, so when its row
        // holds others too, the message moves to a row of its own (the old
        // row keeps the others and their visibility), recording where it came
        // from: receipts name that row. Rows are found by id, as in
        // delete_batch, and the commit does not wait for the disk, as in
        // receive.
        let changed = sqlx::query_file_scalar!(
            "sql/change_visibility.sql",
            self.id(),
            receipt.row,
            receipt.id,
            receipt.lease,
            lock.as_secs_f64(),
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(changed > 0)
    }
}
