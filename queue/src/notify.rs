//! Wake-ups for long polling, built so that NOTIFY never becomes the
//! bottleneck of a busy queue.
//!
//! Postgres serialises the commits of every transaction that issued a NOTIFY,
//! which is why pgmq, Oban and River all had to throttle or drop theirs. Here
//! a send never notifies inside its own transaction: it pokes a per-process
//! notifier task, which folds every poke that arrives within
//! [`NOTIFY_INTERVAL`] of its previous NOTIFY into the next one. Under load
//! that is at most one NOTIFY per interval per process, whatever the send
//! rate; the first send to an idle queue still notifies at once. A caller
//! that sends in a transaction of its own can have the NOTIFY ride in it
//! (`Queue::notify_in`) when one is due, saving the notifier's transaction.
//!
//! Receivers wait on an in-process [`Notify`] per queue, fed by one LISTEN
//! connection per process. A receive that waits also re-polls now and then, as
//! delayed messages and expired locks become visible without any send.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::{Queue, Result};

/// The channel every queue notification goes through; the payload is the
/// queue id.
pub(crate) const CHANNEL: &str = "darkroom_queue";

/// How often a waiting receive polls even without a notification, unless
/// [`crate::Queues::with_fallback_poll`] says otherwise.
pub const FALLBACK_POLL: Duration = Duration::from_millis(500);

/// Least time between two NOTIFYs of one process. A NOTIFY is a statement
/// and a commit of its own: issued back to back under a steady send rate
/// they cost Postgres about as much as the sends. Spaced out, they add at
/// most this much to the wake-up of a receiver that waits while messages
/// keep arriving, which under load is rare: it finds messages without
/// waiting.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(5);

impl Queue {
    /// Wakes receivers long-polling this queue, in every process. Sends do
    /// this themselves; call it after committing a transaction that sent
    /// with [`Queue::send_batch_in`].
    pub fn notify(&self) {
        self.inner.hub.poke(self.id());
    }

    /// How many receives through this handle's [`crate::Queues`] (and its
    /// clones) wait on this queue now, each registered so that a NOTIFY
    /// wakes it once their `Queues`' LISTEN connection is up. Lets tests
    /// send only once a receive waits, where a send that came first would
    /// be found without any wake-up.
    pub fn receives_waiting(&self) -> usize {
        let waiting = self.inner.hub.waiting.lock().expect("never poisoned");
        waiting.get(&self.id()).copied().unwrap_or(0)
    }

    /// Like [`Queue::notify`], from inside the caller's transaction, which
    /// then wakes the receivers when it commits. When this process has
    /// notified within the last few milliseconds, the wake-up is folded into
    /// its next NOTIFY instead, as sends' own are, so that transactions that
    /// notify (whose commits Postgres serialises) stay few.
    pub async fn notify_in(&self, conn: &mut sqlx::PgConnection) -> Result<()> {
        if !self.inner.hub.claim() {
            self.notify();
            return Ok(());
        }
        sqlx::query!("select pg_notify($1, $2::int4::text)", CHANNEL, self.id())
            .execute(conn)
            .await?;
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct Hub {
    pool: PgPool,
    waiters: Mutex<HashMap<i32, Arc<Notify>>>,
    listener: OnceLock<()>,
    notifier: OnceLock<mpsc::UnboundedSender<i32>>,
    /// When this process last issued a NOTIFY, itself or in a caller's
    /// transaction; shared with the notifier task.
    last: Arc<Mutex<Option<Instant>>>,
    /// How long a waiting receive goes without looking when no NOTIFY
    /// comes.
    pub(crate) fallback_poll: Duration,
    /// Least time between two NOTIFYs of this hub (see [`NOTIFY_INTERVAL`]).
    interval: Duration,
    /// Receives registered for each queue's wake-ups now.
    waiting: Mutex<HashMap<i32, usize>>,
}

/// Counts a receive among its queue's waiting ones until dropped.
pub(crate) struct Waiting {
    hub: Arc<Hub>,
    queue_id: i32,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = self.hub.waiting.lock().expect("never poisoned");
        if let Some(n) = waiting.get_mut(&self.queue_id) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.queue_id);
            }
        }
    }
}

impl Hub {
    pub(crate) fn new(pool: PgPool) -> Arc<Self> {
        Self::with_timing(pool, FALLBACK_POLL, NOTIFY_INTERVAL)
    }

    pub(crate) fn with_timing(
        pool: PgPool,
        fallback_poll: Duration,
        interval: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            fallback_poll,
            interval,
            waiting: Mutex::default(),
            pool,
            waiters: Mutex::new(HashMap::new()),
            listener: OnceLock::new(),
            notifier: OnceLock::new(),
            last: Arc::default(),
        })
    }

    /// The wake-up signal of a queue, starting the listener on first use.
    pub(crate) fn waiter(self: &Arc<Self>, queue_id: i32) -> Arc<Notify> {
        self.listener.get_or_init(|| {
            tokio::spawn(listen(Arc::downgrade(self), self.pool.clone()));
        });
        self.waiters
            .lock()
            .expect("waiters lock is never poisoned")
            .entry(queue_id)
            .or_default()
            .clone()
    }

    /// Counts a receive registered for `queue_id`'s wake-ups (see
    /// [`Queue::receives_waiting`]) until the result drops.
    pub(crate) fn count_waiting(self: &Arc<Self>, queue_id: i32) -> Waiting {
        *self
            .waiting
            .lock()
            .expect("never poisoned")
            .entry(queue_id)
            .or_default() += 1;
        Waiting {
            hub: self.clone(),
            queue_id,
        }
    }

    /// Tells every process that `queue_id` has new messages.
    pub(crate) fn poke(&self, queue_id: i32) {
        let tx = self.notifier.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let (pool, last) = (self.pool.clone(), self.last.clone());
            tokio::spawn(notify_loop(pool, last, self.interval, rx));
            tx
        });
        let _ = tx.send(queue_id);
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether the caller may NOTIFY now (none went out within
    /// [`NOTIFY_INTERVAL`]); if so, the next one is due an interval later.
    pub(crate) fn claim(&self) -> bool {
        claim(&self.last, self.interval)
    }

    fn wake(&self, queue_id: Option<i32>) {
        let waiters = self.waiters.lock().expect("waiters lock is never poisoned");
        match queue_id {
            Some(id) => {
                if let Some(n) = waiters.get(&id) {
                    n.notify_waiters();
                }
            }
            None => waiters.values().for_each(|n| n.notify_waiters()),
        }
    }
}

fn claim(last: &Mutex<Option<Instant>>, interval: Duration) -> bool {
    let mut last = last.lock().expect("last notify lock is never poisoned");
    let now = Instant::now();
    if last.is_some_and(|at| now < at + interval) {
        return false;
    }
    *last = Some(now);
    true
}

async fn notify_loop(
    pool: PgPool,
    last: Arc<Mutex<Option<Instant>>>,
    interval: Duration,
    mut rx: mpsc::UnboundedReceiver<i32>,
) {
    let mut ids = HashSet::new();
    while let Some(id) = rx.recv().await {
        while !claim(&last, interval) {
            let due = last.lock().expect("never poisoned").map(|at| at + interval);
            if let Some(due) = due {
                tokio::time::sleep_until(due).await;
            }
        }
        ids.insert(id);
        while let Ok(id) = rx.try_recv() {
            ids.insert(id);
        }
        let batch: Vec<i32> = ids.drain().collect();
        let sent = sqlx::query!(
            "select pg_notify($1, q::text) from unnest($2::int4[]) as q",
            CHANNEL,
            &batch
        )
        .fetch_all(&pool)
        .await;
        if let Err(e) = sent {
            // Waiters fall back to polling; nothing is lost but latency.
            tracing::debug!(error = %e, "queue notify failed");
        }
    }
}

async fn listen(hub: std::sync::Weak<Hub>, pool: PgPool) {
    let mut listener = loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => break l,
                Err(e) => tracing::debug!(error = %e, "LISTEN failed; retrying"),
            },
            Err(e) => tracing::debug!(error = %e, "listener connect failed; retrying"),
        }
        if hub.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    loop {
        let event = listener.try_recv().await;
        let Some(hub) = hub.upgrade() else { return };
        match event {
            Ok(Some(n)) => hub.wake(n.payload().parse().ok()),
            // The connection dropped and will be re-established: anything
            // sent meanwhile went unheard, so everyone polls once.
            Ok(None) => hub.wake(None),
            Err(e) => {
                tracing::debug!(error = %e, "listener failed; retrying");
                hub.wake(None);
                drop(hub);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
