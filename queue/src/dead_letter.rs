//! Dead letters: a message received `max_receive_count` times without being
//! deleted moves to the queue's dead letter queue on its next receive (see
//! [`Queue::receive`]): the receive leaves it alone and reports its row,
//! which is moved here, before the receive looks again. It is kept there,
//! inspectable and receivable like any message, until it is redriven,
//! deleted or expires.

use sqlx::PgConnection;

use crate::{Error, Queue, Result};

impl Queue {
    /// Moves live rows a receive found past their receive limit to the dead
    /// letter queue. A row another receiver holds, or that has changed since,
    /// is left to whoever holds it. Returns how many messages moved.
    pub(crate) async fn dead_letter(&self, conn: &mut PgConnection, rows: &[i64]) -> Result<u64> {
        let Some((dlq, max_receives)) = self.inner.dead_letter else {
            return Ok(0);
        };
        let moved =
            sqlx::query_file_scalar!("sql/dead_letter.sql", self.id(), dlq, rows, max_receives,)
                .fetch_one(conn)
                .await? as u64;
        Ok(moved)
    }

    /// Moves every message this queue dead-lettered back into it, visible at
    /// once with a fresh receive count. Returns how many moved.
    pub async fn redrive(&self) -> Result<u64> {
        let Some((dlq, _)) = self.inner.dead_letter else {
            return Err(Error::InvalidArgument {
                field: "dead_letter_queue",
                message: format!("queue `{}` has no dead letter queue", self.name()),
            });
        };
        let moved = sqlx::query_file_scalar!("sql/redrive.sql", dlq, self.id(),)
            .fetch_one(&self.pool)
            .await? as u64;
        if moved > 0 {
            self.notify();
        }
        Ok(moved)
    }
}
