//! Acknowledging messages: the delete statements. Deletes are dispatched
//! (alone, or in a group) by `consume`.

use std::collections::HashSet;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::attributes::check_batch;
use crate::message::Receipt;
use crate::{Queue, Result};

/// Which receipts of a batch delete took effect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub deleted: Vec<Receipt>,
    /// Receipts whose lease expired or whose message was received again.
    pub stale: Vec<Receipt>,
}

impl Queue {
    pub(crate) async fn delete_now(&self, receipts: &[Receipt]) -> Result<DeleteOutcome> {
        let mut conn = self.pool.acquire().await?;
        self.delete_batch_in(&mut conn, receipts).await
    }

    /// Like [`Queue::delete_batch`], on the caller's connection, so the
    /// deletes commit with the caller's own writes: a reply sent with
    /// [`Queue::send_batch_in`], say, so that a message is never
    /// acknowledged without its reply nor replied to and left.
    ///
    /// A transaction that deletes commits without waiting for the disk (see
    /// docs/queue.md): a Postgres crash may undo it whole, reply included,
    /// and the message is then delivered again.
    pub async fn delete_batch_in(
        &self,
        conn: &mut PgConnection,
        receipts: &[Receipt],
    ) -> Result<DeleteOutcome> {
        check_batch("receipts", receipts.len())?;
        let deleted = self.delete_once(conn, receipts).await?;
        self.delete_missed(conn, receipts, deleted).await
    }

    /// Completes a delete of `receipts` whose first statement deleted
    /// `deleted`.
    pub(crate) async fn delete_missed(
        &self,
        conn: &mut PgConnection,
        receipts: &[Receipt],
        mut deleted: HashSet<Receipt>,
    ) -> Result<DeleteOutcome> {
        // A delete racing another on the same row can find, once it holds
        // the row, that the other left only messages it deletes itself: the
        // row is then to be deleted, not shrunk, which this statement had
        // already ruled out. A second statement deletes it; a receipt still
        // not deleted then is truly stale.
        let missed: Vec<Receipt> = receipts
            .iter()
            .filter(|r| !deleted.contains(r))
            .copied()
            .collect();
        if !missed.is_empty() {
            deleted.extend(self.delete_once(conn, &missed).await?);
        }
        let (deleted, stale) = receipts.iter().partition(|r| deleted.contains(r));
        Ok(DeleteOutcome { deleted, stale })
    }

    /// Makes `receipts` whose lock ran out, while nobody received their
    /// messages again, current again for a second, so that a delete or
    /// visibility change with them that follows at once takes effect; returns
    /// how many rows it took back. The native API never calls it: its
    /// receipts are good only while their lock holds. SQS's stay good until
    /// the message is received again, and its endpoint calls this when a
    /// receipt turns out stale. Messages received together share a row, so
    /// the others of that receive are held back for the second too.
    pub(crate) async fn reclaim(&self, receipts: &[Receipt]) -> Result<u64> {
        let (ids, rows, leases) = columns(receipts);
        let sql =
            sqlx::query_file_scalar!("sql/reclaim_leases.sql", self.id(), &ids, &rows, &leases);
        Ok(sql.fetch_one(&self.pool).await? as u64)
    }

    /// One delete statement; returns the receipts that took effect.
    async fn delete_once(
        &self,
        conn: &mut PgConnection,
        receipts: &[Receipt],
    ) -> Result<HashSet<Receipt>> {
        let (ids, rows, leases) = columns(receipts);
        // A receipt names the row its message was received in; the message
        // is still there, or, after a visibility change, in a row whose
        // `origin` is that one. So rows are found by id, through the primary
        // key and the origin index, whatever the planner believes about the
        // table. A row losing every message is deleted; any other keeps the
        // rest. The commit does not wait for the disk: a delete lost in a
        // Postgres crash delivers the message again, as SQS may (see
        // docs/queue.md).
        let done = sqlx::query_file!("sql/delete.sql", self.id(), &ids, &rows, &leases,)
            .fetch_all(&mut *conn)
            .await?;
        Ok(took_effect(
            receipts,
            done.into_iter().map(|r| (r.ids, r.lease)),
        ))
    }
}

/// Receipts as the delete statements take them: message ids, the rows the
/// messages were received in, and their leases.
pub(crate) fn columns(receipts: &[Receipt]) -> (Vec<i64>, Vec<i64>, Vec<Uuid>) {
    let ids = receipts.iter().map(|r| r.id).collect();
    let rows = receipts.iter().map(|r| r.row).collect();
    let leases = receipts.iter().map(|r| r.lease).collect();
    (ids, rows, leases)
}

/// The receipts among `receipts` that a delete statement reported deleted,
/// as message ids under a lease.
pub(crate) fn took_effect(
    receipts: &[Receipt],
    done: impl Iterator<Item = (Vec<i64>, Uuid)>,
) -> HashSet<Receipt> {
    let done: HashSet<(i64, Uuid)> = done
        .flat_map(|(ids, lease)| ids.into_iter().map(move |id| (id, lease)))
        .collect();
    receipts
        .iter()
        .filter(|r| done.contains(&(r.id, r.lease)))
        .copied()
        .collect()
}
