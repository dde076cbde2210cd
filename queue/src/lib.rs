//! Darkroom's message queue: Tencent CMQ / SQS semantics on Postgres.
//!
//! A message is sent to a named queue, received under a *lease* (a lock whose
//! duration the receiver chooses), and deleted with the receipt of that lease.
//! A lease is a token column on the message row, never an open transaction, so
//! a receiver that crashes simply lets its lease expire and the message is
//! delivered again with a new receipt. See `docs/queue.md` for the state
//! machine and the guarantees.
//!
//! # Layout
//! Modules are private; what they offer is re-exported here.
//! - `attributes`: [`QueueAttributes`] and their bounds.
//! - `admin`: create, open, list, purge and delete queues ([`Queues`]).
//! - `send`: enqueue messages, alone or in a caller's transaction.
//! - `message`: what a receive hands out ([`Message`], [`Receipt`]) and the
//!   rows its statements return.
//! - `receive`: lease the oldest visible messages in one statement.
//! - `long_poll`: wait for messages, woken by sends (one queue or a routed
//!   queue's parts).
//! - `delete`: acknowledge messages by receipt; stale receipts are reported.
//! - `reply`: acknowledge messages and send their replies in one statement.
//! - `group`: group commit, small concurrent sends, receives and deletes
//!   sharing one statement.
//! - `consume`: every receive and delete call, dispatched alone or with
//!   others in one group, and in one statement when they meet.
//! - `lease`: extend or release a lease ([`Queue::change_visibility`]).
//! - `dead_letter`: where poison and expired messages go, and redrive.
//! - `rewind`: deliver already deleted messages again, from a time or an id.
//! - `maintenance`: retention, partitions, counters, vacuum ([`Maintenance`]).
//! - `stats`: visible, in-flight, delayed and dead-lettered counts.
//! - `notify`: long-poll wake-ups across processes (LISTEN/NOTIFY).
//! - `shards`: one queue over several Postgres clusters ([`Router`]).
//! - `http`: the queue HTTP API ([`http_router`], [`AdminToken`]).
//! - `sqs`: an Amazon SQS endpoint over the queues ([`sqs_router`]).
//! - `topics`: publish/subscribe with tag and routing-key filters, into
//!   queues and to HTTP endpoints ([`Topics`], [`Pusher`]).
//! - `connect`: a pool to `DATABASE_URL`, migrated ([`connect`]) or waiting
//!   for the schema's owner to have migrated it ([`connect_migrated`]).
//! - `error`: the typed [`Error`].
//!
//! The big statements are files of their own under `queue/sql/`, each
//! run by one function (`sqlx::query_file!`, compile-checked); the
//! `darkroom-queue` command line is `src/cli/`.

mod admin;
mod attributes;
mod connect;
mod consume;
mod dead_letter;
mod delete;
mod error;
mod group;
mod http;
mod lease;
mod long_poll;
mod maintenance;
mod message;
mod notify;
mod receive;
mod reply;
mod rewind;
mod send;
mod shards;
mod sqs;
mod stats;
mod topics;

pub use admin::{Put, Queues};
pub use attributes::{MAX_BATCH, MAX_DELAY, MAX_LOCK, MAX_WAIT, QueueAttributes, QueueKind};
pub use connect::{connect, connect_migrated};
pub use delete::DeleteOutcome;
pub use error::{Error, Result};
pub use http::{AdminToken, ApiDoc, WeakToken, router as http_router};
pub use maintenance::Maintenance;
pub use message::{DeadLetterReason, Message, Receipt};
pub use notify::FALLBACK_POLL;
pub use rewind::RewindTo;
pub use send::NewMessage;
pub use shards::{MessageRef, RETIRE_AFTER, ROUTE_TTL, Routed, Router, ShardInfo};
pub use sqs::{AccessKeys, SqsArgs, SqsConfig, router as sqs_router};
pub use stats::Stats;
pub use topics::{
    BodyFormat, DELIVERY_QUEUE, MAX_TAGS, Protocol, Publication, Pusher, RetryPolicy,
    SubscriptionInfo, SubscriptionSpec, TopicFilter, TopicInfo, TopicSettings, Topics,
    public_host as topic_public_host, signature as topic_signature,
};

use std::sync::Arc;

use sqlx::PgPool;

/// The queue's schema (`migrations/queue/`). Databases it shares with an
/// application carry the application's migrations too, which this leaves
/// alone.
///
/// Applying them takes a Postgres advisory lock, so processes starting together
/// apply them once.
pub static MIGRATOR: sqlx::migrate::Migrator = {
    let mut migrator = sqlx::migrate!("../migrations/queue");
    migrator.ignore_missing = true;
    migrator
};

/// A handle on one existing queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    pool: PgPool,
    inner: Arc<QueueInner>,
}

#[derive(Debug)]
struct QueueInner {
    id: i32,
    /// The shard this handle's database is (0: the control database, or a
    /// database used without shards).
    shard: i32,
    name: String,
    attributes: QueueAttributes,
    /// (dead letter queue id, max receive count), when configured.
    dead_letter: Option<(i32, i32)>,
    hub: Arc<notify::Hub>,
    /// Messages per live row seen by recent receives (see `Queue::receive`).
    row_size: receive::RowSize,
    /// Small concurrent calls waiting to share a statement (see `group`).
    sends: group::Group<Vec<NewMessage>, Vec<i64>>,
    consumes: group::Group<consume::Consume, consume::Consumed>,
}

impl Queue {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The attributes as they were when this handle was opened.
    pub fn attributes(&self) -> &QueueAttributes {
        &self.inner.attributes
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn id(&self) -> i32 {
        self.inner.id
    }
}
