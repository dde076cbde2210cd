//! Acknowledging messages: the delete statements. Deletes are dispatched
//! (alone, or in a group) by `consume`.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use uuid::Uuid;

use crate::attributes::check_batch;
use crate::message::Receipt;
use crate::{Queue, Result};

/// Which receipts of a batch delete took effect.
/// Which earlier receipts of a message still act once the native API calls
/// them stale ([`Queue::reclaim`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reclaim {
    /// Only the latest receive's, after its lock ran out: SQS's FIFO queues.
    Latest,
    /// Any receive's, even while a later receive holds the message: SQS's
    /// standard queues, where any receipt of a message deletes it.
    AnyReceipt,
}

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

    /// The receipts that act now for the messages of `receipts` the native
    /// API called stale: SQS's receipts stay good after their lock ran out
    /// (and, on a standard queue, after a later receive), which the native
    /// API's never do, so the SQS endpoint calls this and retries with what
    /// it returns. A message whose lock ran out is leased again for a
    /// second, so that the delete or visibility change that follows at once
    /// takes effect; messages received together share a row, so the others
    /// of that receive are held back for the second too. `rule` says which
    /// earlier receipts still act; a message none acts for is left out.
    pub(crate) async fn reclaim(
        &self,
        receipts: &[Receipt],
        rule: Reclaim,
    ) -> Result<Vec<Receipt>> {
        let (ids, rows, leases) = columns(receipts);
        let any_receipt = rule == Reclaim::AnyReceipt;
        let sql = sqlx::query_file!(
            "sql/reclaim_leases.sql",
            self.id(),
            &ids,
            &rows,
            &leases,
            any_receipt
        );
        let current: HashMap<i64, Uuid> = sql
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| (r.id, r.lease))
            .collect();
        Ok(receipts
            .iter()
            .filter_map(|r| {
                Some(Receipt {
                    lease: *current.get(&r.id)?,
                    ..*r
                })
            })
            .collect())
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
