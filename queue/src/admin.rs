//! Creating, opening, listing, purging and deleting queues.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::attributes::{from_millis, millis};
use crate::notify::Hub;
use crate::{Error, Queue, QueueAttributes, QueueInner, QueueKind, Result};

/// Entry point to the queues of one database. Clone it rather than making a
/// new one: clones share one LISTEN connection for long polling.
#[derive(Clone, Debug)]
pub struct Queues {
    pool: PgPool,
    hub: Arc<Hub>,
    /// Stamped on the receipts of this database's messages.
    shard: i32,
}

struct QueueRow {
    id: i32,
    name: String,
    kind: String,
    visibility_timeout_ms: i64,
    max_receive_count: Option<i32>,
    dead_letter_queue: Option<String>,
    dead_letter_id: Option<i32>,
    retention_ms: Option<i64>,
    rewind_window_ms: i64,
    delay_ms: i64,
    max_message_bytes: i32,
    polling_wait_ms: i64,
}

/// Whether [`Queues::put`] made a new queue or updated one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Created,
    Updated,
}

impl Queues {
    pub fn new(pool: PgPool) -> Self {
        Self::on_shard(pool, 0)
    }

    /// The queues of shard `shard` (see [`crate::Router`]).
    pub(crate) fn on_shard(pool: PgPool, shard: i32) -> Self {
        Self {
            hub: Hub::new(pool.clone()),
            pool,
            shard,
        }
    }

    /// These queues with receives that, while they wait, look again every
    /// `every` without a NOTIFY (see [`crate::FALLBACK_POLL`]). A router
    /// over them gives its shards' queues the same. Make it before cloning:
    /// the result has a LISTEN connection of its own. Tests of wake-ups set
    /// it far above their bound, since with the usual 500 ms a broken
    /// NOTIFY passes for a slow one; such receives no longer see delayed
    /// messages or expired locks appear while they wait.
    pub fn with_fallback_poll(self, every: Duration) -> Self {
        let interval = self.hub.interval();
        Self {
            hub: Hub::with_timing(self.pool.clone(), every, interval),
            ..self
        }
    }

    /// These queues with at least `interval` between two NOTIFYs of theirs
    /// (5 ms unless set; sends' wake-ups in between are folded into the
    /// next). Tests set it far above the time their sends take, so that
    /// the folding is seen whatever the machine's speed. Like
    /// [`Queues::with_fallback_poll`], make it before cloning.
    pub fn with_notify_interval(self, interval: Duration) -> Self {
        let fallback = self.hub.fallback_poll;
        Self {
            hub: Hub::with_timing(self.pool.clone(), fallback, interval),
            ..self
        }
    }

    /// See [`Queues::with_fallback_poll`].
    pub(crate) fn fallback_poll(&self) -> Duration {
        self.hub.fallback_poll
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn handle(&self, row: QueueRow) -> Queue {
        let attributes = QueueAttributes {
            kind: QueueKind::parse(&row.kind),
            visibility_timeout: from_millis(row.visibility_timeout_ms),
            max_receive_count: row.max_receive_count.map(|n| n.max(0) as u32),
            dead_letter_queue: row.dead_letter_queue,
            retention: row.retention_ms.map(from_millis),
            rewind_window: from_millis(row.rewind_window_ms),
            delay: from_millis(row.delay_ms),
            max_message_bytes: row.max_message_bytes.max(0) as u32,
            polling_wait: from_millis(row.polling_wait_ms),
        };
        Queue {
            pool: self.pool.clone(),
            inner: Arc::new(QueueInner {
                id: row.id,
                shard: self.shard,
                name: row.name,
                dead_letter: row.dead_letter_id.zip(row.max_receive_count),
                attributes,
                hub: self.hub.clone(),
                row_size: Default::default(),
                sends: Default::default(),
                consumes: Default::default(),
            }),
        }
    }

    async fn check_dead_letter_queue(&self, attributes: &QueueAttributes) -> Result<()> {
        let Some(dlq) = &attributes.dead_letter_queue else {
            return Ok(());
        };
        // A queue may be its own dead letter queue, as in SQS: a message
        // past its receive limit then stays, visible, with a fresh receive
        // count, and counts as dead-lettered.
        match self.open(dlq).await {
            // As in SQS: a dead-lettered message keeps its row, and rows of
            // ordered and concurrent queues are laid out differently.
            Ok(d) if d.attributes().kind != attributes.kind => Err(Error::InvalidAttribute {
                field: "dead_letter_queue",
                message: format!(
                    "queue `{dlq}` is {}, this queue is {}: a dead letter queue must be of the same kind",
                    d.attributes().kind.as_str(),
                    attributes.kind.as_str()
                ),
            }),
            Ok(_) => Ok(()),
            Err(Error::QueueNotFound(_)) => Err(Error::InvalidAttribute {
                field: "dead_letter_queue",
                message: format!("queue `{dlq}` does not exist; create it first"),
            }),
            Err(e) => Err(e),
        }
    }

    /// Creates the queue, or updates its attributes when it exists.
    pub async fn put(&self, name: &str, attributes: &QueueAttributes) -> Result<(Queue, Put)> {
        let created = self.write(name, attributes, true).await?;
        let put = if created == Some(true) {
            Put::Created
        } else {
            Put::Updated
        };
        Ok((self.open(name).await?, put))
    }

    /// Creates the queue with `attributes` unless it already exists; never
    /// changes an existing queue. Used by services to declare what they need.
    pub async fn ensure(&self, name: &str, attributes: &QueueAttributes) -> Result<Queue> {
        match self.open(name).await {
            Err(Error::QueueNotFound(_)) => {}
            other => return other,
        }
        self.write(name, attributes, false).await?;
        self.open(name).await
    }

    /// Creates the queue, or, with `replace`, updates an existing one. Returns
    /// whether it was created, or `None` when an existing queue was kept.
    async fn write(
        &self,
        name: &str,
        attributes: &QueueAttributes,
        replace: bool,
    ) -> Result<Option<bool>> {
        check_name("name", name, QUEUE_NAME_MAX)?;
        attributes.validate()?;
        self.check_dead_letter_queue(attributes).await?;
        Ok(sqlx::query_file_scalar!(
            "sql/put_queue.sql",
            name,
            attributes.kind.as_str(),
            millis(attributes.visibility_timeout),
            attributes.max_receive_count.map(|n| n as i32),
            attributes.dead_letter_queue,
            attributes.retention.map(millis) as Option<i64>,
            millis(attributes.rewind_window),
            millis(attributes.delay),
            attributes.max_message_bytes as i32,
            millis(attributes.polling_wait),
            replace,
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Opens an existing queue.
    pub async fn open(&self, name: &str) -> Result<Queue> {
        let row = self
            .rows(Some(name))
            .await?
            .pop()
            .ok_or_else(|| Error::QueueNotFound(name.to_owned()))?;
        Ok(self.handle(row))
    }

    /// Every queue, by name.
    pub async fn list(&self) -> Result<Vec<Queue>> {
        let rows = self.rows(None).await?;
        Ok(rows.into_iter().map(|r| self.handle(r)).collect())
    }

    /// The queue named `name`, or every queue, by name.
    async fn rows(&self, name: Option<&str>) -> Result<Vec<QueueRow>> {
        Ok(sqlx::query_file_as!(QueueRow, "sql/queue_rows.sql", name)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Deletes the queue and its live messages. Refused while another queue
    /// uses it as dead letter queue.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let users = sqlx::query_scalar!(
            "select name from queue_queues where dead_letter_queue = $1 and name <> $1 order by name",
            name
        )
        .fetch_all(&self.pool)
        .await?;
        if !users.is_empty() {
            return Err(Error::InvalidArgument {
                field: "name",
                message: format!(
                    "`{name}` is the dead letter queue of {}; change those first",
                    users.join(", ")
                ),
            });
        }
        let mut tx = self.pool.begin().await?;
        let id = sqlx::query_scalar!(
            "delete from queue_queues where name = $1 returning id",
            name
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::QueueNotFound(name.to_owned()))?;
        // Its counters go; those of the queues its messages were
        // dead-lettered from are put right.
        sqlx::query_file_scalar!("sql/purge.sql", id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query!("delete from queue_counters where queue_id = $1", id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Queue {
    /// Deletes every live message of the queue (visible, in flight or
    /// delayed); returns how many. Bodies stay until retention, so a purged
    /// queue can still be rewound.
    pub async fn purge(&self) -> Result<u64> {
        let purged = sqlx::query_file_scalar!("sql/purge.sql", self.id())
            .fetch_one(&self.pool)
            .await?;
        Ok(purged as u64)
    }
}

/// The longest queue name: an SQS name of 80 after its region's (see
/// `sqs::regions`).
pub(crate) const QUEUE_NAME_MAX: usize = 128;
/// The longest topic or subscription name.
pub(crate) const NAME_MAX: usize = 80;

/// Names of queues, topics and subscriptions: 1 to `max` of A-Z a-z 0-9 _ - .
pub(crate) fn check_name(field: &'static str, name: &str, max: usize) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            field,
            message: format!("1 to {max} characters of A-Z, a-z, 0-9, '_', '-' or '.'"),
        })
    }
}
