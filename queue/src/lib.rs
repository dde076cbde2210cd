//! Darkroom's message queue: Tencent CMQ / SQS semantics on Postgres.
//!
//! A message is sent to a named queue, received under a *lease* (a lock whose
//! duration the receiver chooses), and deleted with the receipt of that lease.
//! A lease is a token column on the message row, never an open transaction, so
//! a receiver that crashes simply lets its lease expire and the message is
//! delivered again with a new receipt.
//!
//! # Layout
//! - [`attributes`]: queue attributes and their validation.
//! - [`admin`]: create, open, list and delete queues ([`Queues`]).
//! - [`send`]: enqueue messages, alone or in a caller's transaction.
//! - [`receive`]: lease the oldest visible messages in one statement.
//! - [`delete`]: acknowledge messages by receipt; stale receipts are reported.
//! - [`lease`]: extend or release a lease ([`Queue::change_visibility`]).
//! - [`stats`]: visible, in-flight and delayed counts.
//! - [`error`]: the typed [`Error`].

pub mod admin;
pub mod attributes;
pub mod delete;
pub mod error;
pub mod lease;
pub mod receive;
pub mod send;
pub mod stats;

use std::sync::Arc;

pub use admin::Queues;
pub use attributes::{QueueAttributes, QueueKind};
pub use delete::DeleteOutcome;
pub use error::{Error, Result};
pub use receive::{Message, Receipt};
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
