//! Group commit: small concurrent calls on one queue handle share a
//! statement.
//!
//! At one message per call, a queue's cost is the statement and its
//! commit, not the message: three statements per message for a send, a
//! receive and a delete. Calls that arrive while the handle's statement of
//! their kind runs wait for it to finish and then go together, as one
//! statement, the way Postgres itself groups commits. There is no timer: a
//! lone call starts at once, so grouping adds no latency when idle, and
//! the busier the queue, the larger the groups.
//!
//! One statement of a kind is in flight per handle: allowing two made the
//! groups smaller and the statements more, and the batch-1 full cycle of
//! 4 clients 15–30 % slower (measured). Receives and deletes are one kind
//! here (see `consume`). Calls that carry many messages
//! already share their statement's cost among them and go alone (see
//! [`GROUP_UP_TO`]), so large batches keep running side by side.
//!
//! The task running a kind's groups keeps one connection while groups keep
//! coming and the pool has others to spare ([`Held`]): a busy handle's
//! statements follow one another on it without going back to the pool in
//! between.

use std::sync::{Arc, Mutex};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::oneshot;

use crate::{Error, Result};

/// Calls of at most this many messages (or receipts) are grouped. A
/// statement's fixed cost is about that of 20–50 messages' worth of work,
/// so larger calls gain little from company and would only wait for it.
pub(crate) const GROUP_UP_TO: usize = 16;

/// Calls waiting for the statement of one kind, and whether one runs.
pub(crate) struct Group<Req, Out> {
    state: Mutex<State<Req, Out>>,
}

struct State<Req, Out> {
    waiting: Vec<Member<Req, Out>>,
    running: bool,
}

/// One call in a group: what it asked and where its answer goes.
pub(crate) struct Member<Req, Out> {
    pub(crate) request: Req,
    answer: oneshot::Sender<Result<Out>>,
}

impl<Req, Out> Member<Req, Out> {
    pub(crate) fn answer(self, out: Result<Out>) {
        // The caller may have given up (its future dropped); nothing then
        // waits for the answer, and the work it asked for is done all the
        // same, as if it had been cancelled after sending its statement.
        let _ = self.answer.send(out);
    }
}

impl<Req, Out> Default for Group<Req, Out> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                waiting: Vec::new(),
                running: false,
            }),
        }
    }
}

impl<Req, Out> std::fmt::Debug for Group<Req, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock().expect("group lock");
        f.debug_struct("Group")
            .field("waiting", &state.waiting.len())
            .field("running", &state.running)
            .finish()
    }
}

impl<Req, Out> Group<Req, Out> {
    /// Queues `request` and waits for its answer. When no statement of this
    /// kind runs, `run` is spawned to run them: it must take groups from a
    /// [`Group::runner`] until it hands out an empty one. It runs as a task
    /// of its own, so a caller that gives up cannot strand the others.
    pub(crate) async fn join<F>(&self, request: Req, run: impl FnOnce() -> F) -> Result<Out>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (answer, out) = oneshot::channel();
        let lead = {
            let mut state = self.state.lock().expect("group lock");
            state.waiting.push(Member { request, answer });
            !std::mem::replace(&mut state.running, true)
        };
        if lead {
            tokio::spawn(run());
        }
        // The runner answers every member it takes, even when its statement
        // fails; an answer dropped unsent means it panicked or its runtime
        // shut down.
        out.await
            .unwrap_or(Err(Error::Database(sqlx::Error::WorkerCrashed)))
    }

    /// The running side, for the task [`Group::join`] spawned: it takes
    /// the waiting calls a group at a time ([`Runner::next`]) and answers
    /// every member of each, until none waits.
    pub(crate) fn runner(&self) -> Runner<'_, Req, Out> {
        Runner {
            group: self,
            idle: false,
            ran: false,
        }
    }
}

/// Takes groups to run; if dropped before the queue ran dry (a panic, a
/// runtime shutting down), drops what waits, so its callers fail instead
/// of waiting forever, and lets the next call start a runner afresh.
pub(crate) struct Runner<'a, Req, Out> {
    group: &'a Group<Req, Out>,
    idle: bool,
    /// Whether a group was taken already.
    ran: bool,
}

impl<Req, Out> Runner<'_, Req, Out> {
    /// The next group to run: waiting calls in arrival order while their
    /// sizes (by `size`) add up to at most `limit` (the first one always).
    /// Calls of a `class` (receives with one lock duration, say) go only
    /// with calls of the same class or of none (deletes go with anything).
    /// Empty when nothing waits: the runner must then stop, and the next
    /// call starts another.
    pub(crate) async fn next<C: PartialEq>(
        &mut self,
        limit: usize,
        size: impl Fn(&Req) -> usize,
        class: impl Fn(&Req) -> Option<C>,
    ) -> Vec<Member<Req, Out>> {
        // The callers just answered are ready to run and often call again
        // at once (a loop of sends, a delete after a receive); letting them
        // run first puts them in this group instead of the one after it.
        // Without it, a few busy callers split into groups that take turns,
        // each paying a statement and a commit for half of them (measured:
        // 4 clients sending one message at a time, 4,800 msgs/s without
        // the yield, 10,000 with it).
        if std::mem::replace(&mut self.ran, true) {
            tokio::task::yield_now().await;
        }
        let mut state = self.group.state.lock().expect("group lock");
        if state.waiting.is_empty() {
            state.running = false;
            self.idle = true;
            return Vec::new();
        }
        let mut taken: Vec<Member<Req, Out>> = Vec::new();
        let mut total = 0;
        let mut group_class = None;
        let mut kept = Vec::new();
        for m in state.waiting.drain(..) {
            let n = size(&m.request);
            let c = class(&m.request);
            let fits = taken.is_empty()
                || (total + n <= limit
                    && (c.is_none() || group_class.is_none() || c == group_class));
            if fits {
                total += n;
                if group_class.is_none() {
                    group_class = c;
                }
                taken.push(m);
            } else {
                kept.push(m);
            }
        }
        state.waiting = kept;
        taken
    }
}

impl<Req, Out> Drop for Runner<'_, Req, Out> {
    fn drop(&mut self) {
        if !self.idle {
            let mut state = self.group.state.lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.clear();
            state.running = false;
        }
    }
}

/// A runner's connection: taken from the pool for its first group and kept
/// while groups keep coming. sqlx pings a pooled connection when it goes
/// back (a round trip of its own), so returning it after every statement
/// would double the round trips of a busy queue.
pub(crate) struct Held {
    pool: PgPool,
    conn: Option<PoolConnection<Postgres>>,
}

impl Held {
    pub(crate) fn new(pool: &PgPool) -> Self {
        Self {
            pool: pool.clone(),
            conn: None,
        }
    }

    pub(crate) async fn conn(&mut self) -> Result<&mut PgConnection> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.pool.acquire().await?,
        };
        let conn: &mut PgConnection = self.conn.insert(conn);
        Ok(conn)
    }

    /// Runs `work` on the connection, letting go of it when `work` fails.
    pub(crate) async fn with<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        let done = match self.conn().await {
            Ok(conn) => work(conn).await,
            Err(e) => Err(e),
        };
        if done.is_err() {
            self.failed();
        }
        done
    }

    /// Lets go of the connection after a failed statement, which may have
    /// left it broken: the next group takes another.
    pub(crate) fn failed(&mut self) {
        self.conn = None;
    }

    /// Gives the connection back between groups when the pool has none
    /// idle and may open no more: a runner kept busy must not starve the
    /// other handles' runners and the callers that share its pool. With
    /// connections to spare, it keeps it.
    pub(crate) fn share(&mut self) {
        let max = self.pool.options().get_max_connections();
        if self.pool.num_idle() == 0 && self.pool.size() >= max {
            self.conn = None;
        }
    }
}

/// Hands a statement's failure to every member it served, each as a shared
/// reference that keeps its kind (see [`Error::Grouped`]).
pub(crate) fn fail_all<Req, Out>(members: Vec<Member<Req, Out>>, error: Error) {
    let shared = Arc::new(error);
    for m in members {
        m.answer(Err(Error::Grouped(shared.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_of(sizes: &[usize]) -> Group<usize, ()> {
        let g: Group<usize, ()> = Group::default();
        let mut state = g.state.lock().unwrap();
        for &n in sizes {
            let (answer, _) = oneshot::channel();
            state.waiting.push(Member { request: n, answer });
        }
        state.running = true;
        drop(state);
        g
    }

    fn sizes(members: &[Member<usize, ()>]) -> Vec<usize> {
        members.iter().map(|m| m.request).collect()
    }

    #[tokio::test]
    async fn next_takes_what_fits_in_arrival_order_and_keeps_the_rest() {
        let g = group_of(&[3, 9, 2, 8]);
        let mut r = g.runner();
        // 3 + 9 reach the limit; 2 and 8 wait for the next group.
        assert_eq!(sizes(&r.next(12, |&n| n, |_| None::<()>).await), vec![3, 9]);
        assert_eq!(sizes(&r.next(12, |&n| n, |_| None::<()>).await), vec![2, 8]);
        assert!(r.next(12, |&n| n, |_| None::<()>).await.is_empty());
        drop(r);
        assert!(!g.state.lock().unwrap().running);
    }

    #[tokio::test]
    async fn an_oversized_first_call_still_runs() {
        let g = group_of(&[20, 1]);
        assert_eq!(
            sizes(&g.runner().next(10, |&n| n, |_| None::<()>).await),
            vec![20]
        );
    }

    #[tokio::test]
    async fn calls_of_another_class_wait_for_a_group_of_their_own() {
        // Zeros have no class and go with anything; the rest by parity.
        let g = group_of(&[0, 1, 2, 0, 3, 4]);
        let mut r = g.runner();
        let parity = |&n: &usize| (n > 0).then_some(n % 2);
        assert_eq!(sizes(&r.next(100, |&n| n, parity).await), vec![0, 1, 0, 3]);
        assert_eq!(sizes(&r.next(100, |&n| n, parity).await), vec![2, 4]);
    }

    #[tokio::test]
    async fn a_runner_dropped_midway_fails_the_waiting_and_frees_the_group() {
        let g = group_of(&[1, 2]);
        let mut r = g.runner();
        let first = r.next(1, |&n| n, |_| None::<()>).await;
        assert_eq!(sizes(&first), vec![1]);
        drop(r);
        let state = g.state.lock().unwrap();
        assert!(state.waiting.is_empty());
        assert!(!state.running);
    }
}
