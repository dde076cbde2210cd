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
//! - [`attributes`]: queue attributes and their bounds.
//! - [`admin`]: create, open, list, purge and delete queues ([`Queues`]).
//! - [`send`]: enqueue messages, alone or in a caller's transaction.
//! - [`receive`]: lease the oldest visible messages in one statement; long polling.
//! - [`delete`]: acknowledge messages by receipt; stale receipts are reported.
//! - [`lease`]: extend or release a lease ([`Queue::change_visibility`]).
//! - [`dead_letter`]: where poison messages go, and redrive.
//! - [`rewind`]: deliver already deleted messages again, from a time or an id.
//! - [`maintenance`]: retention (in bulk, by partition) and partition upkeep.
//! - [`stats`]: visible, in-flight, delayed and dead-lettered counts.
//! - [`http`]: the queue HTTP API (axum router).
//! - [`cli`]: the `darkroom-queue` command line.
//! - [`error`]: the typed [`Error`].

pub mod admin;
pub mod attributes;
pub mod cli;
pub mod dead_letter;
pub mod delete;
pub mod error;
pub mod http;
pub mod lease;
pub mod maintenance;
mod notify;
pub mod receive;
pub mod rewind;
pub mod send;
pub mod stats;

use std::sync::Arc;

pub use admin::Queues;
pub use attributes::{QueueAttributes, QueueKind};
pub use delete::DeleteOutcome;
pub use error::{Error, Result};
pub use receive::{DeadLetterReason, Message, Receipt};
pub use send::NewMessage;
use sqlx::PgPool;
pub use stats::Stats;

/// The migrations of every Darkroom table (queue, jobs), shared by all binaries.
///
/// Applying them takes a Postgres advisory lock, so processes starting together
/// apply them once.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A handle on one existing queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    pool: PgPool,
    inner: Arc<QueueInner>,
}

#[derive(Debug)]
struct QueueInner {
    id: i32,
    name: String,
    attributes: QueueAttributes,
    /// (dead letter queue id, max receive count), when configured.
    dead_letter: Option<(i32, i32)>,
    hub: Arc<notify::Hub>,
    /// Messages per live row seen by recent receives (see `Queue::receive`).
    row_size: receive::RowSize,
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

    /// Wakes receivers long-polling this queue, in every process. Sends do
    /// this themselves; call it after committing a transaction that sent
    /// with [`Queue::send_batch_in`].
    pub fn notify(&self) {
        self.inner.hub.poke(self.id());
    }
}
