//! Leasing messages: the receive statements and their rounds; waiting for
//! them is `long_poll`'s. Receives are dispatched (alone, or in a group) by `consume`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::long_poll::long_poll;
use crate::message::{DeadLetterReason, Message, Receipt, Row};
use crate::send::ROW_MESSAGES;
use crate::{Queue, QueueKind, Result};

/// How many messages the live rows at the head of a queue hold, as recent
/// receives found them: a receive locks only the rows it expects to need.
/// Locking a row is a write, and a receive that locks rows it leaves alone
/// also hides them from every other receiver until it commits.
#[derive(Debug)]
pub(crate) struct RowSize(AtomicU32);

impl Default for RowSize {
    fn default() -> Self {
        // Until a receive says otherwise, expect one message per row: lock as
        // many rows as messages wanted, never too few.
        Self(AtomicU32::new(1))
    }
}

impl RowSize {
    /// Rows to lock for `max` messages: one more than the average says, as
    /// the first row may be the short tail of a run split by a receive;
    /// unless `max` is a whole number of runs, as when receives take what
    /// senders batched: such receives never split a run, so there is no
    /// tail, and an extra locked row would be written and hidden from other
    /// receivers for nothing. If a tail is there after all, the receive
    /// comes up short and looks again.
    fn rows_for(&self, max: usize) -> i64 {
        let size = self.0.load(Ordering::Relaxed).max(1) as usize;
        let tail = usize::from(!max.is_multiple_of(size));
        (max.div_ceil(size) + tail).min(max) as i64
    }

    /// Takes on what `earlier` learned (a handle on the same queue).
    fn adopt(&self, earlier: &RowSize) {
        self.0
            .store(earlier.0.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Folds in what a receive found: `messages` in `rows` rows.
    fn observe(&self, messages: usize, rows: usize) {
        if rows == 0 {
            return;
        }
        let seen = (messages / rows).clamp(1, ROW_MESSAGES as usize) as u32;
        let old = self.0.load(Ordering::Relaxed);
        // Weighted toward the past, so one odd row does not swing it.
        self.0
            .store((3 * old + seen).div_ceil(4), Ordering::Relaxed);
    }
}

impl Queue {
    /// Carries over what `earlier`, a handle on the same queue, learned of
    /// its rows, so that reopening a queue (a router does every second, for
    /// fresh attributes) does not make receives start guessing again.
    pub(crate) fn learn_from(&self, earlier: &Queue) {
        if self.id() == earlier.id() {
            self.inner.row_size.adopt(&earlier.inner.row_size);
        }
    }

    pub(crate) async fn receive_now(&self, max: usize, lock: Duration) -> Result<Vec<Message>> {
        let mut conn = self.pool.acquire().await?;
        self.receive_in(&mut conn, max, lock).await
    }

    pub(crate) async fn receive_in(
        &self,
        conn: &mut PgConnection,
        max: usize,
        lock: Duration,
    ) -> Result<Vec<Message>> {
        let mut r = self.receiving(max, lock);
        let found = self.receive_round(conn, &r).await?;
        self.receive_rest(conn, &mut r, found).await?;
        Ok(r.finish())
    }

    /// A receive of up to `max` messages, before its first round.
    pub(crate) fn receiving(&self, max: usize, lock: Duration) -> Receiving {
        Receiving {
            max,
            lock,
            lease: Uuid::new_v4(),
            lock_rows: self.inner.row_size.rows_for(max),
            messages: Vec::new(),
        }
    }

    /// What the next round of `r` asks for.
    pub(crate) fn take(&self, r: &Receiving) -> Take {
        Take {
            queue: self.id(),
            max: (r.max - r.messages.len()) as i64,
            lock: r.lock.as_secs_f64(),
            lease: r.lease,
            max_receives: self.inner.dead_letter.map(|(_, max)| max),
            lock_rows: r.lock_rows,
        }
    }

    pub(crate) fn ordered(&self) -> bool {
        self.attributes().kind == QueueKind::Ordered
    }

    /// One round of `r`: one statement.
    async fn receive_round(&self, conn: &mut PgConnection, r: &Receiving) -> Result<Vec<Row>> {
        let take = self.take(r);
        if self.ordered() {
            self.receive_ordered(conn, &take).await
        } else {
            self.receive_concurrent(conn, &take).await
        }
    }

    /// Takes in the rows a first round `found`, then looks again while a
    /// round comes up short for a reason that more may be there, at most
    /// four rounds in all. A round can come up short for two reasons: every
    /// row locked was taken whole and the runs were smaller than expected
    /// (more may be visible; the next round is sized by what this one
    /// found), or it met messages past their receive limit, which
    /// `dead_letter` moves before the next look.
    pub(crate) async fn receive_rest(
        &self,
        conn: &mut PgConnection,
        r: &mut Receiving,
        mut found: Vec<Row>,
    ) -> Result<()> {
        for round in 1.. {
            if !self.take_in(conn, r, found).await? || round == 4 {
                break;
            }
            found = self.receive_round(conn, r).await?;
        }
        Ok(())
    }

    /// Adds a round's rows to `r`; whether to look again.
    async fn take_in(
        &self,
        conn: &mut PgConnection,
        r: &mut Receiving,
        found: Vec<Row>,
    ) -> Result<bool> {
        let before = r.messages.len();
        let want = r.max - before;
        let mut dead_rows = Vec::new();
        let mut leased_rows = HashSet::new();
        for row in found {
            let (Some(ids), Some(bodies)) = (row.ids, row.bodies) else {
                dead_rows.push(row.row_id);
                continue;
            };
            leased_rows.insert(row.row_id);
            r.messages
                .extend(ids.into_iter().zip(bodies).map(|(id, body)| {
                    Message {
                        id,
                        body,
                        receipt: Receipt {
                            shard: self.inner.shard,
                            id,
                            row: row.row_id,
                            lease: r.lease,
                        },
                        receive_count: row.receive_count,
                        enqueued_at: row.enqueued_at,
                        first_received_at: row.first_received_at,
                        dead_letter_reason: row
                            .dead_letter_reason
                            .as_deref()
                            .and_then(DeadLetterReason::parse),
                        dead_letter_source: row.dead_letter_source.clone(),
                    }
                }));
        }
        let got = r.messages.len() - before;
        let mut again = false;
        if !self.ordered() {
            self.inner.row_size.observe(got, leased_rows.len());
            if got < want && leased_rows.len() as i64 == r.lock_rows {
                let seen = got / leased_rows.len().max(1);
                r.lock_rows = (want - got).div_ceil(seen.max(1)) as i64;
                again = true;
            }
        }
        if !dead_rows.is_empty() && self.dead_letter(conn, &dead_rows).await? > 0 {
            again = true;
        }
        Ok(again && r.messages.len() < r.max)
    }

    /// Like [`Queue::receive`], but when nothing is visible waits up to `wait`
    /// for a message to arrive, returning as soon as one does.
    pub async fn receive_wait(
        &self,
        max: usize,
        lock: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>> {
        let fallback = self.inner.hub.fallback_poll;
        long_poll(
            wait,
            fallback,
            || async { Ok(vec![(0, self.clone())]) },
            |_| self.receive(max, lock),
        )
        .await
    }

    async fn receive_concurrent(&self, conn: &mut PgConnection, t: &Take) -> Result<Vec<Row>> {
        // One statement: SKIP LOCKED lets concurrent receivers pick disjoint
        // rows without waiting on each other; `RowSize` says how many. Rows
        // are taken in id order until `max` messages, the last one split:
        // its tail stays visible as a row of its own. Locked rows are read
        // in `picked`, which sees their latest version, and nowhere else.
        // Rows past their receive limit are not taken but returned without
        // messages, for `dead_letter` to move: poison messages are rare, and
        // carrying their move here would cost every receive of every queue
        // the planning and start-up of a second update and its counters.
        //
        // Every table access goes through an index whatever the planner
        // believes about row counts (lookups by `= any(array(...))`, bodies by
        // a subquery on a chunk's key, a row's slice of one chunk or
        // `queue_bodies_of` for rows with gaps), and the queue, the
        // receive limit and the row limit are subqueries rather than
        // parameters, so the planner cannot tailor a plan to their values: a
        // plan made for one queue's statistics (a new, empty queue looks
        // cheaper than average) would win over the generic plan, and
        // Postgres would plan every call (most of a millisecond, more than
        // executing it). So it plans once per connection and reuses that.
        //
        // Like every statement that only leases or acknowledges, it commits
        // without waiting for the disk (`synchronous_commit` off for this
        // transaction): a Postgres crash can lose the lease, which only
        // delivers the message again. Sends do wait. See docs/queue.md.
        let (queue, max, lock, lease, dead) = (t.queue, t.max, t.lock, t.lease, t.max_receives);
        let sql = sqlx::query_file_as!(
            Row,
            "sql/receive_concurrent.sql",
            queue,
            max,
            lock,
            lease,
            dead,
            t.lock_rows
        );
        Ok(sql.fetch_all(conn).await?)
    }

    async fn receive_ordered(&self, conn: &mut PgConnection, t: &Take) -> Result<Vec<Row>> {
        // Rows of ordered queues hold one message each. A group is
        // deliverable only when its head (first sent) is visible: a leased
        // or delayed head holds its group back, and as a batch of a group is
        // leased together, its head is leased as long as any of it is. With
        // the head go the visible messages right behind it, up to `max`, as
        // SQS hands out a FIFO group. `groups` skips from one group to the
        // next through the index, so finding the heads costs one index probe
        // per group, not a walk over the backlog. A head past its receive
        // limit is returned without its message, for `dead_letter` to move;
        // its group's next message comes after it.
        let (queue, max, lock, lease, dead) = (t.queue, t.max, t.lock, t.lease, t.max_receives);
        let sql = sqlx::query_file_as!(
            Row,
            "sql/receive_ordered.sql",
            queue,
            max,
            lock,
            lease,
            dead
        );
        Ok(sql.fetch_all(conn).await?)
    }
}

/// One receive call across its rounds: what it asked, what it has.
pub(crate) struct Receiving {
    max: usize,
    lock: Duration,
    lease: Uuid,
    /// Rows the next round locks (see [`RowSize`]).
    lock_rows: i64,
    messages: Vec<Message>,
}

impl Receiving {
    /// The messages received, oldest first.
    pub(crate) fn finish(mut self) -> Vec<Message> {
        self.messages.sort_unstable_by_key(|m| m.id);
        self.messages
    }
}

/// What one receive statement is asked for: up to `max` messages of
/// `queue`, leased for `lock` seconds under `lease`, from at most
/// `lock_rows` rows (concurrent queues); rows received `max_receives` times
/// are reported instead.
pub(crate) struct Take {
    pub(crate) queue: i32,
    pub(crate) max: i64,
    pub(crate) lock: f64,
    pub(crate) lease: Uuid,
    pub(crate) max_receives: Option<i32>,
    pub(crate) lock_rows: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_runs_lock_no_extra_row() {
        let size = RowSize(AtomicU32::new(100));
        assert_eq!(size.rows_for(100), 1);
        assert_eq!(size.rows_for(200), 2);
        // Part of a run: the first row may be a tail, so one more.
        assert_eq!(size.rows_for(150), 3);
        assert_eq!(size.rows_for(30), 2);
        assert_eq!(RowSize::default().rows_for(5), 5);
    }

    #[test]
    fn a_reopened_handle_keeps_the_row_size_learned() {
        let earlier = RowSize::default();
        earlier.observe(100, 1);
        earlier.observe(100, 1);
        let reopened = RowSize::default();
        reopened.adopt(&earlier);
        assert_eq!(reopened.rows_for(100), earlier.rows_for(100));
        assert!(reopened.rows_for(100) < RowSize::default().rows_for(100));
    }
}
