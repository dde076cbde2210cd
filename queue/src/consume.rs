//! Receives and deletes through one handle share statements: this module
//! takes every receive and delete call and dispatches it, a large one
//! alone, small ones in a group (`receive` and `delete` only run the
//! statements).
//!
//! A consumer receives, deletes, receives again. With a group (and a
//! statement in flight) per kind, a handle's consumers drift into two
//! halves, one receiving while the other deletes, and each statement serves
//! half of them (1.7 calls a group at 4 consumers, measured). One group for
//! both kinds gathers every consumer waiting: a group of receives and
//! deletes runs as one statement (`sql/delete_receive.sql`), one round trip
//! and one commit where there were two.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::PgConnection;

use crate::attributes::{check_batch, check_lock};
use crate::delete::{DeleteOutcome, columns, took_effect};
use crate::group::{GROUP_UP_TO, Held, Member, fail_all};
use crate::message::{Message, Receipt, Row};
use crate::receive::Receiving;
use crate::{Error, Queue, Result};

/// A small receive or delete waiting for its group.
pub(crate) enum Consume {
    Receive { max: usize, lock: Duration },
    Delete(Vec<Receipt>),
}

/// What a [`Consume`] got: messages for a receive, an outcome for a delete.
pub(crate) enum Consumed {
    Received(Vec<Message>),
    Deleted(DeleteOutcome),
}

impl Consume {
    /// Messages asked for, or receipts given.
    pub(crate) fn size(&self) -> usize {
        match self {
            Consume::Receive { max, .. } => *max,
            Consume::Delete(receipts) => receipts.len(),
        }
    }

    /// The lease a receive asks for; receives go together only with the
    /// same one, as one statement leases all it takes alike.
    pub(crate) fn lock(&self) -> Option<Duration> {
        match self {
            Consume::Receive { lock, .. } => Some(*lock),
            Consume::Delete(_) => None,
        }
    }

    /// Every receipt the deletes of `group` give.
    pub(crate) fn receipts(group: &[Member<Consume, Consumed>]) -> Vec<Receipt> {
        group
            .iter()
            .flat_map(|m| match &m.request {
                Consume::Delete(receipts) => receipts.as_slice(),
                Consume::Receive { .. } => &[],
            })
            .copied()
            .collect()
    }
}

impl Consumed {
    pub(crate) fn received(self) -> Vec<Message> {
        match self {
            Consumed::Received(messages) => messages,
            Consumed::Deleted(_) => unreachable!("a receive is answered with messages"),
        }
    }

    pub(crate) fn deleted(self) -> DeleteOutcome {
        match self {
            Consumed::Deleted(outcome) => outcome,
            Consumed::Received(_) => unreachable!("a delete is answered with an outcome"),
        }
    }
}

impl Queue {
    /// Joins the handle's group of small receives and deletes (see `group`).
    pub(crate) async fn consume(&self, call: Consume) -> Result<Consumed> {
        let q = self.clone();
        let run = move || async move { q.run_consumes().await };
        self.inner.consumes.join(call, run).await
    }

    /// Leases up to `max` visible messages, oldest first, for `lock`.
    ///
    /// Returns at once, possibly with no message. On an ordered queue a
    /// group's messages come in the order sent, as many of a group as `max`
    /// allows, and none of a group while any earlier message of it is
    /// leased. Messages already received `max_receive_count` times move to
    /// the dead letter queue instead of being returned.
    ///
    /// Small receives made concurrently through one handle (its clones
    /// included) with the same `lock` share a statement (see `group`); the
    /// oldest messages go to the receive that came first.
    pub async fn receive(&self, max: usize, lock: Duration) -> Result<Vec<Message>> {
        check_batch("max", max)?;
        check_lock(lock)?;
        if max > GROUP_UP_TO {
            return self.receive_now(max, lock).await;
        }
        let messages = self.consume(Consume::Receive { max, lock }).await?;
        Ok(messages.received())
    }

    /// Answers a group of receives with one receive: the oldest messages
    /// go to the call that came first.
    pub(crate) async fn run_receive_group(
        &self,
        held: &mut Held,
        group: Vec<Member<Consume, Consumed>>,
    ) {
        let Some(lock) = group.first().and_then(|m| m.request.lock()) else {
            return;
        };
        if self.ordered() {
            return self.run_ordered_receives(held, group, lock).await;
        }
        let max = group.iter().map(|m| m.request.size()).sum();
        match held
            .with(async |conn| self.receive_in(conn, max, lock).await)
            .await
        {
            Ok(messages) => Self::hand_out(group, messages),
            Err(e) => fail_all(group, e),
        }
    }

    /// An ordered queue's receives of a group, a statement each: one
    /// statement's messages would be shared out by count, and could give
    /// one group's batch to two receivers, who would then work on it at
    /// once, out of order.
    async fn run_ordered_receives(
        &self,
        held: &mut Held,
        group: Vec<Member<Consume, Consumed>>,
        lock: Duration,
    ) {
        for m in group {
            let max = m.request.size();
            let got = held
                .with(async |conn| self.receive_in(conn, max, lock).await)
                .await;
            m.answer(got.map(Consumed::Received));
        }
    }

    /// Gives each receive of a group its share of `messages`, in order.
    pub(crate) fn hand_out(group: Vec<Member<Consume, Consumed>>, messages: Vec<Message>) {
        let mut messages = messages.into_iter();
        for m in group {
            let mine = messages.by_ref().take(m.request.size()).collect();
            m.answer(Ok(Consumed::Received(mine)));
        }
    }

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

    /// Deletes up to 1000 messages by receipt.
    ///
    /// Small batches deleted concurrently through one handle (its clones
    /// included) share a statement (see `group`).
    pub async fn delete_batch(&self, receipts: &[Receipt]) -> Result<DeleteOutcome> {
        check_batch("receipts", receipts.len())?;
        if receipts.len() > GROUP_UP_TO {
            return self.delete_now(receipts).await;
        }
        let outcome = self.consume(Consume::Delete(receipts.to_vec())).await?;
        Ok(outcome.deleted())
    }

    /// Answers a group of deletes with one delete.
    pub(crate) async fn run_delete_group(
        &self,
        held: &mut Held,
        group: Vec<Member<Consume, Consumed>>,
    ) {
        let all = Consume::receipts(&group);
        match held
            .with(async |conn| self.delete_batch_in(conn, &all).await)
            .await
        {
            Ok(outcome) => Self::tell_deleted(group, &outcome.deleted),
            Err(e) => fail_all(group, e),
        }
    }

    /// Tells each delete of a group which of its receipts took effect.
    pub(crate) fn tell_deleted(group: Vec<Member<Consume, Consumed>>, deleted: &[Receipt]) {
        let deleted: HashSet<&Receipt> = deleted.iter().collect();
        for m in group {
            let Consume::Delete(receipts) = &m.request else {
                continue;
            };
            let (deleted, stale) = receipts.iter().copied().partition(|r| deleted.contains(r));
            m.answer(Ok(Consumed::Deleted(DeleteOutcome { deleted, stale })));
        }
    }

    /// Runs the waiting receives and deletes a group at a time, until none
    /// waits.
    async fn run_consumes(&self) {
        let mut runner = self.inner.consumes.runner();
        let mut held = Held::new(&self.pool);
        loop {
            held.share();
            let group = runner
                .next(crate::MAX_BATCH, Consume::size, Consume::lock)
                .await;
            if group.is_empty() {
                return;
            }
            let (receives, deletes): (Vec<_>, Vec<_>) = group
                .into_iter()
                .partition(|m| matches!(m.request, Consume::Receive { .. }));
            if deletes.is_empty() {
                self.run_receive_group(&mut held, receives).await;
            } else if receives.is_empty() {
                self.run_delete_group(&mut held, deletes).await;
            } else if self.ordered() {
                // An ordered queue's receive is a statement of another
                // shape; it comes second, so it sees its group's head gone.
                self.run_delete_group(&mut held, deletes).await;
                self.run_receive_group(&mut held, receives).await;
            } else if let Err(e) = self.run_mixed_group(&mut held, receives, deletes).await {
                held.failed();
                fail_all(e.0, e.1);
            }
        }
    }

    /// Deletes and receives in one statement. The deletes are answered as
    /// soon as they are done, before any further receive round. A failure
    /// is handed back with the calls it leaves unanswered.
    async fn run_mixed_group(
        &self,
        held: &mut Held,
        receives: Vec<Member<Consume, Consumed>>,
        deletes: Vec<Member<Consume, Consumed>>,
    ) -> std::result::Result<(), (Vec<Member<Consume, Consumed>>, Error)> {
        // Every receive of a group asks for the same lock.
        let lock = receives.first().and_then(|m| m.request.lock());
        let lock = lock.unwrap_or_default();
        let receipts = Consume::receipts(&deletes);
        let max = receives.iter().map(|m| m.request.size()).sum();
        let mut receiving = self.receiving(max, lock);
        let conn = match held.conn().await {
            Ok(conn) => conn,
            Err(e) => return Err((receives.into_iter().chain(deletes).collect(), e)),
        };
        let (found, deleted) = match self.delete_receive(conn, &receipts, &receiving).await {
            Ok(done) => done,
            Err(e) => return Err((receives.into_iter().chain(deletes).collect(), e)),
        };
        match self.delete_missed(conn, &receipts, deleted).await {
            Ok(outcome) => Self::tell_deleted(deletes, &outcome.deleted),
            Err(e) => return Err((receives.into_iter().chain(deletes).collect(), e)),
        }
        match self.receive_rest(conn, &mut receiving, found).await {
            Ok(()) => Self::hand_out(receives, receiving.finish()),
            Err(e) => return Err((receives, e)),
        }
        Ok(())
    }

    /// The first round of `receiving` and a delete of `receipts`, as one
    /// statement: the rows received, and the receipts that took effect.
    async fn delete_receive(
        &self,
        conn: &mut PgConnection,
        receipts: &[Receipt],
        receiving: &Receiving,
    ) -> Result<(Vec<Row>, HashSet<Receipt>)> {
        let (ids, rows, leases) = columns(receipts);
        let t = self.take(receiving);
        let out = sqlx::query_file!(
            "sql/delete_receive.sql",
            t.queue,
            &ids,
            &rows,
            &leases,
            t.max,
            t.lock,
            t.lease,
            t.max_receives,
            t.lock_rows,
        )
        .fetch_all(conn)
        .await?;
        let mut found = Vec::new();
        let mut done = Vec::new();
        for r in out {
            let received = (
                r.row_id,
                r.receive_count,
                r.enqueued_at,
                r.first_received_at,
            );
            match (r.lease, received) {
                (Some(lease), _) => done.push((r.ids.unwrap_or_default(), lease)),
                (None, (Some(row_id), Some(receive_count), Some(enqueued), Some(first))) => found
                    .push(Row {
                        row_id,
                        ids: r.ids,
                        bodies: r.bodies,
                        receive_count,
                        enqueued_at: enqueued,
                        first_received_at: first,
                        dead_letter_reason: r.dead_letter_reason,
                        dead_letter_source: r.dead_letter_source,
                    }),
                (None, _) => unreachable!("a received row has its id, count and times"),
            }
        }
        let deleted = took_effect(receipts, done.into_iter());
        Ok((found, deleted))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// The statements' CTEs from the first to the one before `counted`.
    fn ctes<'a>(sql: &'a str, first: &str) -> &'a str {
        let start = sql.find(first).expect("first CTE");
        let end = sql.find("), counted as (").expect("counted CTE");
        &sql[start..end]
    }

    /// `sql` with each `$n` renumbered by `renumber`.
    pub(crate) fn renumbered(sql: &str, renumber: impl Fn(u32) -> u32) -> String {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits > 0 {
                let n: u32 = rest[..digits].parse().unwrap();
                out.push_str(&renumber(n).to_string());
                rest = &rest[digits..];
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn the_combined_statement_deletes_and_receives_as_the_two_statements_do() {
        // sql/delete_receive.sql repeats the work of sql/delete.sql and of
        // sql/receive_concurrent.sql (whose parameters after the queue come
        // after the delete's); a change to either must reach it too.
        let combined = include_str!("../sql/delete_receive.sql");
        let delete = ctes(include_str!("../sql/delete.sql"), "with found as (");
        let receive = ctes(
            include_str!("../sql/receive_concurrent.sql"),
            "with picked as (",
        );
        let receive = renumbered(receive, |n| if n == 1 { 1 } else { n + 3 }).replacen(
            "with picked as (",
            "), picked as (",
            1,
        );
        assert!(combined.contains(delete), "the deletes differ");
        assert!(combined.contains(&receive), "the receive differs");
    }
}
