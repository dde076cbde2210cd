//! One queue over several Postgres clusters ("shards").
//!
//! A [`Router`] is given a *control* database. Its `queue_shards` table
//! names the other clusters and `queue_placements` says where each queue
//! lives: on one shard, or spread over several. A queue with no placement
//! lives in the control database itself (shard 0), so a one-database setup is
//! a router with nothing placed. Every shard is a complete queue database: a
//! queue placed on three shards is three ordinary queues of one name, and
//! the router decides which one each operation goes to.
//!
//! A part of a queue is `active` (takes sends and receives), `draining`
//! (left behind by a move: still received from, no longer sent to) or
//! `retired` (drained; kept for rewinds). See docs/queue.md, "Shards".
//!
//! # Layout
//! - `registry`: the shards, and queues created, listed and deleted
//!   wherever they live.
//! - `placement`: place / spread / move a queue.
//! - `settle`: retiring drained parts ([`Router::settle`]); every shard's
//!   maintenance.
//! - `message_ref`: a message by shard and id, and as a UUID.
//! - `routed`: sending, receiving and acknowledging across a queue's parts
//!   ([`Routed`]).
//! - `alongside`: sends, deletes and replies in an app's own transaction,
//!   routed so that the app never picks a shard.
//! - `totals`: stats, rewind, redrive and purge over every part.

mod alongside;
mod message_ref;
mod placement;
mod registry;
mod routed;
mod settle;
mod totals;

pub use message_ref::MessageRef;
pub use registry::ShardInfo;
pub use routed::Routed;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tokio::time::Instant;

use crate::{Error, Queue, QueueKind, Queues, Result};

/// How long a router trusts what it read of a queue's placement. A send
/// made on a placement this old may still reach a part that a move has just
/// set draining, which is why a part is retired only after
/// [`RETIRE_AFTER`].
pub const ROUTE_TTL: Duration = Duration::from_secs(1);

/// How long a draining part stays draining, empty or not, before it can be
/// retired: far longer than any router's [`ROUTE_TTL`], so that no sender
/// still believes it active.
pub const RETIRE_AFTER: Duration = Duration::from_secs(30);

/// How long a shard that failed to answer is skipped before it is tried
/// again, so that a down cluster costs one timeout per second, not one per
/// operation.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// Routes queue operations to the shards the control database names. Cheap
/// to clone; clones share connections and the cache of placements.
#[derive(Clone, Debug)]
pub struct Router {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    control: Queues,
    shards: Mutex<HashMap<i32, Arc<Shard>>>,
    routes: Mutex<HashMap<String, Arc<Route>>>,
    ttl: Duration,
    retire_after: Duration,
    connections: u32,
    /// Where the next round-robin send or receive starts.
    turn: AtomicUsize,
}

/// One cluster, as this process reaches it.
#[derive(Debug)]
struct Shard {
    id: i32,
    name: String,
    queues: Queues,
    down_until: Mutex<Option<Instant>>,
}

impl Shard {
    fn usable(&self) -> bool {
        let until = *self.down_until.lock().expect("down_until");
        until.is_none_or(|t| Instant::now() >= t)
    }

    fn mark_down(&self) {
        tracing::warn!(shard = %self.name, "shard unreachable; skipping it for a second");
        *self.down_until.lock().expect("down_until") = Some(Instant::now() + DOWN_FOR);
    }

    /// Passes `result` on, noting when it says the shard is unreachable.
    fn watch<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(e) if e.is_unreachable() => {
                self.mark_down();
                Err(Error::ShardUnavailable(self.name.clone()))
            }
            other => other,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Active,
    Draining,
    Retired,
}

impl State {
    fn parse(s: &str) -> Self {
        match s {
            "active" => State::Active,
            "draining" => State::Draining,
            _ => State::Retired,
        }
    }
}

/// A queue's parts, as read from the control database at `read_at`.
#[derive(Debug)]
struct Route {
    kind: QueueKind,
    parts: Vec<Part>,
    read_at: Instant,
}

#[derive(Clone, Debug)]
struct Part {
    shard: Arc<Shard>,
    state: State,
    /// `None` when the shard could not be reached as the route was read.
    queue: Option<Queue>,
}

impl Route {
    /// Parts that take sends, by shard id; an ordered queue's groups are
    /// hashed over these, reachable or not, so that a group never changes
    /// shard because one is down.
    fn active(&self) -> Vec<&Part> {
        self.parts
            .iter()
            .filter(|p| p.state == State::Active)
            .collect()
    }

    /// Parts to receive from. An ordered queue being moved delivers from
    /// its old parts only, until they are retired: its groups' older
    /// messages are there, and must go first.
    fn readable(&self) -> Vec<&Part> {
        let draining = self.parts.iter().any(|p| p.state == State::Draining);
        self.parts
            .iter()
            .filter(|p| match (self.kind, p.state) {
                (_, State::Retired) => false,
                (QueueKind::Ordered, State::Active) => !draining,
                _ => true,
            })
            .collect()
    }

    /// Parts holding live messages or history: all but retired ones.
    fn live(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().filter(|p| p.state != State::Retired)
    }
}

impl Router {
    /// A router over the shards that `control`'s database lists.
    pub fn new(control: Queues) -> Self {
        Self::with_timing(control, ROUTE_TTL, RETIRE_AFTER)
    }

    /// Like [`Router::new`] with other timings (tests shorten them).
    /// `retire_after` must be well above `ttl`: see [`RETIRE_AFTER`].
    pub fn with_timing(control: Queues, ttl: Duration, retire_after: Duration) -> Self {
        assert!(retire_after >= 2 * ttl, "retire_after must outlast routes");
        Self {
            inner: Arc::new(Inner {
                control,
                shards: Mutex::default(),
                routes: Mutex::default(),
                ttl,
                retire_after,
                connections: 10,
                turn: AtomicUsize::new(0),
            }),
        }
    }

    /// The control database's queues (shard 0).
    pub fn control(&self) -> &Queues {
        &self.inner.control
    }

    /// The queue `name` wherever it lives.
    pub async fn open(&self, name: &str) -> Result<Routed> {
        self.route(name, false).await?;
        Ok(Routed {
            router: self.clone(),
            name: name.to_owned(),
        })
    }

    fn next_turn(&self) -> usize {
        self.inner.turn.fetch_add(1, Ordering::Relaxed)
    }

    /// The handle on shard `id`, connecting (lazily) the first time.
    fn shard(&self, id: i32, name: &str, url: Option<&str>) -> Result<Arc<Shard>> {
        let mut shards = self.inner.shards.lock().expect("shards");
        if let Some(s) = shards.get(&id) {
            return Ok(s.clone());
        }
        let queues = match url {
            None => self.inner.control.clone(),
            Some(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(self.inner.connections)
                    .acquire_timeout(Duration::from_secs(2))
                    .test_before_acquire(false)
                    .connect_lazy(url)?;
                Queues::on_shard(pool, id).with_fallback_poll(self.inner.control.fallback_poll())
            }
        };
        let shard = Arc::new(Shard {
            id,
            name: name.to_owned(),
            queues,
            down_until: Mutex::default(),
        });
        shards.insert(id, shard.clone());
        Ok(shard)
    }

    /// The route of queue `name`: cached for the router's TTL unless `fresh`.
    /// When the control database cannot be reached, the last route read is
    /// used: a control outage stops placement changes, not traffic.
    async fn route(&self, name: &str, fresh: bool) -> Result<Arc<Route>> {
        let cached = self.inner.routes.lock().expect("routes").get(name).cloned();
        if let Some(r) = &cached
            && !fresh
            && r.read_at.elapsed() < self.inner.ttl
        {
            return Ok(r.clone());
        }
        let route = match self.read_route(name, cached.as_deref()).await {
            Ok(r) => Arc::new(r),
            Err(e) if e.is_unreachable() && cached.is_some() => {
                tracing::warn!(error = %e, queue = name, "control database unreachable; using the last route read");
                return Ok(cached.expect("checked"));
            }
            Err(e) => return Err(e),
        };
        let mut routes = self.inner.routes.lock().expect("routes");
        routes.insert(name.to_owned(), route.clone());
        Ok(route)
    }

    fn forget_route(&self, name: &str) {
        self.inner.routes.lock().expect("routes").remove(name);
    }

    async fn read_route(&self, name: &str, last: Option<&Route>) -> Result<Route> {
        let mut rows = sqlx::query_file!("sql/read_route.sql", name)
            .fetch_all(self.inner.control.pool())
            .await?
            .into_iter()
            .map(|r| (r.shard_id, State::parse(&r.state), r.name, r.url))
            .collect::<Vec<_>>();
        if rows.is_empty() {
            rows.push((0, State::Active, "control".to_owned(), None));
        }
        let mut parts = Vec::with_capacity(rows.len());
        for (id, state, shard_name, url) in rows {
            let shard = self.shard(id, &shard_name, url.as_deref())?;
            let earlier = last
                .and_then(|l| l.parts.iter().find(|p| p.shard.id == id))
                .and_then(|p| p.queue.as_ref());
            let queue = if shard.usable() {
                match shard.watch(shard.queues.open(name).await) {
                    Ok(q) => Some(q),
                    Err(Error::QueueNotFound(_)) if state == State::Retired => None,
                    Err(Error::ShardUnavailable(_)) => None,
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            if let (Some(q), Some(earlier)) = (&queue, earlier) {
                q.learn_from(earlier);
            }
            // A shard down now keeps the handle it had, so that its receipts
            // can still be tried once it is back.
            let queue = queue.or_else(|| earlier.cloned());
            parts.push(Part {
                shard,
                state,
                queue,
            });
        }
        let kind = parts
            .iter()
            .find_map(|p| p.queue.as_ref().map(|q| q.attributes().kind))
            .or(last.map(|l| l.kind));
        let Some(kind) = kind else {
            return Err(match parts.iter().find(|p| !p.shard.usable()) {
                Some(p) => Error::ShardUnavailable(p.shard.name.clone()),
                None => Error::QueueNotFound(name.to_owned()),
            });
        };
        Ok(Route {
            kind,
            parts,
            read_at: Instant::now(),
        })
    }
}
