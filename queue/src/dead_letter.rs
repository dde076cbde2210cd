//! Dead letters: a message received `max_receive_count` times without being
//! deleted moves to the queue's dead letter queue on its next receive (see
//! [`Queue::receive`]). It is kept there, inspectable and receivable like any
//! message, until it is redriven, deleted or expires.

use crate::{Error, Queue, Result};

impl Queue {
    /// Moves every message this queue dead-lettered back into it, visible at
    /// once with a fresh receive count. Returns how many moved.
    pub async fn redrive(&self) -> Result<u64> {
        let Some((dlq, _)) = self.inner.dead_letter else {
            return Err(Error::InvalidArgument {
                field: "dead_letter_queue",
                message: format!("queue `{}` has no dead letter queue", self.name()),
            });
        };
        let moved = sqlx::query!(
            r#"
            update queue_messages
            set queue_id = $2, visible_at = now(), lease = null, receive_count = 0,
                dead_letter_source = null
            where queue_id = $1 and dead_letter_source = $2
            "#,
            dlq,
            self.id(),
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        if moved > 0 {
            self.notify();
        }
        Ok(moved)
    }
}
