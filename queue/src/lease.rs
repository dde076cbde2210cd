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
        let updated = sqlx::query!(
            r#"
            update queue_messages
            set visible_at = now() + make_interval(secs => $4)
            where id = $2 and queue_id + 0 = $1 and lease = $3 and visible_at > now()
            "#,
            self.id(),
            receipt.id,
            receipt.lease,
            lock.as_secs_f64(),
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(Error::StaleReceipt);
        }
        Ok(())
    }
}
