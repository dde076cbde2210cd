//! Creating, opening, listing and deleting queues.

use std::sync::Arc;

use sqlx::PgPool;

use crate::attributes::{from_millis, millis};
use crate::{Error, Queue, QueueAttributes, QueueInner, QueueKind, Result};

/// Entry point to the queues of one database.
#[derive(Clone, Debug)]
pub struct Queues {
    pool: PgPool,
}

struct QueueRow {
    id: i32,
    name: String,
    kind: String,
    visibility_timeout_ms: i64,
    max_receive_count: Option<i32>,
    dead_letter_queue: Option<String>,
    retention_ms: i64,
    rewind_window_ms: i64,
    delay_ms: i64,
    max_message_bytes: i32,
    polling_wait_ms: i64,
}

impl QueueRow {
    fn into_queue(self, pool: PgPool) -> Queue {
        let attributes = QueueAttributes {
            kind: QueueKind::parse(&self.kind),
            visibility_timeout: from_millis(self.visibility_timeout_ms),
            max_receive_count: self.max_receive_count.map(|n| n.max(0) as u32),
            dead_letter_queue: self.dead_letter_queue,
            retention: from_millis(self.retention_ms),
            rewind_window: from_millis(self.rewind_window_ms),
            delay: from_millis(self.delay_ms),
            max_message_bytes: self.max_message_bytes.max(0) as u32,
            polling_wait: from_millis(self.polling_wait_ms),
        };
        Queue {
            pool,
            inner: Arc::new(QueueInner {
                id: self.id,
                name: self.name,
                attributes,
            }),
        }
    }
}

/// Whether [`Queues::put`] made a new queue or updated one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Created,
    Updated,
}

impl Queues {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the queue, or updates its attributes when it exists.
    pub async fn put(&self, name: &str, attributes: &QueueAttributes) -> Result<(Queue, Put)> {
        check_name(name)?;
        attributes.validate()?;
        if let Some(dlq) = &attributes.dead_letter_queue {
            if dlq == name {
                return Err(Error::InvalidAttribute {
                    field: "dead_letter_queue",
                    message: "a queue cannot be its own dead letter queue".into(),
                });
            }
            self.open(dlq).await.map_err(|e| match e {
                Error::QueueNotFound(_) => Error::InvalidAttribute {
                    field: "dead_letter_queue",
                    message: format!("queue `{dlq}` does not exist; create it first"),
                },
                e => e,
            })?;
        }
        let row = sqlx::query!(
            r#"
            insert into queue_queues as q (
                name, kind, visibility_timeout_ms, max_receive_count, dead_letter_queue,
                retention_ms, rewind_window_ms, delay_ms, max_message_bytes, polling_wait_ms
            )
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            on conflict (name) do update set
                kind = excluded.kind,
                visibility_timeout_ms = excluded.visibility_timeout_ms,
                max_receive_count = excluded.max_receive_count,
                dead_letter_queue = excluded.dead_letter_queue,
                retention_ms = excluded.retention_ms,
                rewind_window_ms = excluded.rewind_window_ms,
                delay_ms = excluded.delay_ms,
                max_message_bytes = excluded.max_message_bytes,
                polling_wait_ms = excluded.polling_wait_ms,
                updated_at = now()
            returning q.id, (q.xmax = 0) as "created!"
            "#,
            name,
            attributes.kind.as_str(),
            millis(attributes.visibility_timeout),
            attributes.max_receive_count.map(|n| n as i32),
            attributes.dead_letter_queue,
            millis(attributes.retention),
            millis(attributes.rewind_window),
            millis(attributes.delay),
            attributes.max_message_bytes as i32,
            millis(attributes.polling_wait),
        )
        .fetch_one(&self.pool)
        .await?;
        let queue = Queue {
            pool: self.pool.clone(),
            inner: Arc::new(QueueInner {
                id: row.id,
                name: name.to_owned(),
                attributes: attributes.clone(),
            }),
        };
        let put = if row.created {
            Put::Created
        } else {
            Put::Updated
        };
        Ok((queue, put))
    }

    /// Creates the queue with `attributes` unless it already exists; never
    /// changes an existing queue. Used by services to declare what they need.
    pub async fn ensure(&self, name: &str, attributes: &QueueAttributes) -> Result<Queue> {
        match self.open(name).await {
            Err(Error::QueueNotFound(_)) => {}
            other => return other,
        }
        check_name(name)?;
        attributes.validate()?;
        sqlx::query!(
            r#"
            insert into queue_queues (
                name, kind, visibility_timeout_ms, max_receive_count, dead_letter_queue,
                retention_ms, rewind_window_ms, delay_ms, max_message_bytes, polling_wait_ms
            )
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            on conflict (name) do nothing
            "#,
            name,
            attributes.kind.as_str(),
            millis(attributes.visibility_timeout),
            attributes.max_receive_count.map(|n| n as i32),
            attributes.dead_letter_queue,
            millis(attributes.retention),
            millis(attributes.rewind_window),
            millis(attributes.delay),
            attributes.max_message_bytes as i32,
            millis(attributes.polling_wait),
        )
        .execute(&self.pool)
        .await?;
        self.open(name).await
    }

    /// Opens an existing queue.
    pub async fn open(&self, name: &str) -> Result<Queue> {
        let row = sqlx::query_as!(
            QueueRow,
            r#"
            select id, name, kind, visibility_timeout_ms, max_receive_count, dead_letter_queue,
                   retention_ms, rewind_window_ms, delay_ms, max_message_bytes, polling_wait_ms
            from queue_queues where name = $1
            "#,
            name
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::QueueNotFound(name.to_owned()))?;
        Ok(row.into_queue(self.pool.clone()))
    }

    /// Every queue, by name.
    pub async fn list(&self) -> Result<Vec<Queue>> {
        let rows = sqlx::query_as!(
            QueueRow,
            r#"
            select id, name, kind, visibility_timeout_ms, max_receive_count, dead_letter_queue,
                   retention_ms, rewind_window_ms, delay_ms, max_message_bytes, polling_wait_ms
            from queue_queues order by name
            "#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_queue(self.pool.clone()))
            .collect())
    }

    /// Deletes the queue and all its messages.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let deleted = sqlx::query!("delete from queue_queues where name = $1", name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(Error::QueueNotFound(name.to_owned()));
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 80
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            field: "name",
            message: "1 to 80 characters of A-Z, a-z, 0-9, '_', '-' or '.'".into(),
        })
    }
}
