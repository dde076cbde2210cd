//! Acknowledging messages together with the replies they asked for.
//!
//! A service that answers requests on one queue with messages on another
//! (Darkroom's workers: a response per request) would otherwise open a
//! transaction, send, delete and commit: four round trips. Here the delete
//! and the send are one statement (`sql/delete_send.sql`), one round trip
//! and one commit, so a request is never deleted without its reply nor
//! replied to with its delete undone.

use std::collections::HashSet;

use sqlx::PgConnection;

use crate::attributes::check_batch;
use crate::delete::{columns, took_effect};
use crate::send::{Outgoing, ROW_MESSAGES};
use crate::{DeleteOutcome, Error, NewMessage, Queue, Receipt, Result};

impl Queue {
    /// Deletes up to 1000 messages by receipt and sends `replies` (up to
    /// 1000) to `to`, a queue of the same database, in one statement.
    ///
    /// The replies are sent whatever became of the receipts: a stale one
    /// (reported in the outcome, as by [`Queue::delete_batch`]) means
    /// another receiver may now hold its message and answer it again. A
    /// delete that raced another on the same row completes in a second
    /// statement right after (see `delete_missed`): a crash between the two
    /// delivers that message again, as a lost delete would.
    /// Like [`Queue::send_batch_in`], the replies wake no long-polling
    /// receiver of `to` ([`Queue::notify`] does); like
    /// [`Queue::delete_batch_in`], the commit does not wait for the disk.
    pub async fn reply_batch(
        &self,
        receipts: &[Receipt],
        to: &Queue,
        replies: &[NewMessage],
    ) -> Result<DeleteOutcome> {
        check_batch("receipts", receipts.len())?;
        if !same_database(&self.pool, &to.pool) {
            return Err(Error::InvalidArgument {
                field: "to",
                message: format!(
                    "queue {} is in another database than {}: send and delete apart",
                    to.name(),
                    self.name()
                ),
            });
        }
        let outgoing = to.outgoing(replies)?;
        let mut conn = self.pool.acquire().await?;
        let mut done = self.delete_send(&mut conn, receipts, &outgoing).await;
        if to.partitions_made(&done).await? {
            done = self.delete_send(&mut conn, receipts, &outgoing).await;
        }
        let deleted = done?;
        self.delete_missed(&mut conn, receipts, deleted).await
    }

    /// One statement deleting `receipts` and sending `outgoing`; returns
    /// the receipts that took effect.
    async fn delete_send(
        &self,
        conn: &mut PgConnection,
        receipts: &[Receipt],
        outgoing: &Outgoing<'_>,
    ) -> sqlx::Result<HashSet<Receipt>> {
        let (ids, rows, leases) = columns(receipts);
        let o = outgoing;
        let out = sqlx::query_file!(
            "sql/delete_send.sql",
            self.id(),
            &ids,
            &rows,
            &leases,
            o.queue,
            &o.bodies as &[&str],
            &o.groups as &[&str],
            &o.runs.starts,
            &o.runs.lens,
            ROW_MESSAGES as i32,
            o.ordered,
            &o.runs.delays,
        )
        .fetch_all(conn)
        .await?;
        let done = out.into_iter().filter_map(|r| Some((r.ids?, r.lease?)));
        Ok(took_effect(receipts, done))
    }
}

/// Whether two pools connect to one database (of one server).
fn same_database(a: &sqlx::PgPool, b: &sqlx::PgPool) -> bool {
    let (a, b) = (a.connect_options(), b.connect_options());
    (a.get_host(), a.get_port(), a.get_socket(), a.get_database())
        == (b.get_host(), b.get_port(), b.get_socket(), b.get_database())
}

#[cfg(test)]
mod tests {
    use crate::consume::tests::renumbered;

    /// The statement's CTEs from `first` to its end, `counted` included.
    fn all_ctes<'a>(sql: &'a str, first: &str) -> &'a str {
        let start = sql.find(first).expect("first CTE");
        let end = sql.rfind("\n)\nselect").expect("final select");
        &sql[start..end]
    }

    #[test]
    fn the_combined_statement_deletes_and_sends_as_the_two_statements_do() {
        // sql/delete_send.sql repeats sql/delete.sql and sql/send.sql (whose
        // parameters come after the delete's); a change to either must
        // reach it too.
        let combined = include_str!("../sql/delete_send.sql");
        let delete = all_ctes(include_str!("../sql/delete.sql"), "with found as (");
        let send = all_ctes(
            include_str!("../sql/send.sql"),
            "with base as materialized (",
        );
        let send = renumbered(send, |n| n + 4)
            .replacen("with base as", "), base as", 1)
            .replacen("), counted as (", "), sent_counted as (", 1);
        assert!(combined.contains(delete), "the deletes differ");
        assert!(combined.contains(&send), "the send differs");
    }
}
