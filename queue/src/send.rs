//! Enqueueing messages.

use std::time::Duration;

use sqlx::PgConnection;

use crate::attributes::{MAX_DELAY, check_batch};
use crate::{Error, Queue, Result};

/// A message to send.
#[derive(Clone, Debug, Default)]
pub struct NewMessage {
    pub body: String,
    /// Overrides the queue's delay.
    pub delay: Option<Duration>,
    /// Message group of an ordered queue.
    pub group: Option<String>,
}

impl NewMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Default::default()
        }
    }
}

impl Queue {
    /// Sends one message and returns its id.
    pub async fn send(&self, body: impl Into<String>) -> Result<i64> {
        let ids = self.send_batch(&[NewMessage::new(body)]).await?;
        Ok(ids[0])
    }

    /// Sends up to 1000 messages atomically; ids are returned in message order.
    pub async fn send_batch(&self, messages: &[NewMessage]) -> Result<Vec<i64>> {
        let mut conn = self.pool.acquire().await?;
        self.send_batch_in(&mut conn, messages).await
    }

    /// Like [`Queue::send_batch`], on the caller's connection, so the messages
    /// can be committed together with the caller's own rows.
    pub async fn send_batch_in(
        &self,
        conn: &mut PgConnection,
        messages: &[NewMessage],
    ) -> Result<Vec<i64>> {
        check_batch("messages", messages.len())?;
        let limit = self.attributes().max_message_bytes as usize;
        let mut bodies = Vec::with_capacity(messages.len());
        let mut groups = Vec::with_capacity(messages.len());
        let mut delays = Vec::with_capacity(messages.len());
        for m in messages {
            if m.body.len() > limit {
                return Err(Error::MessageTooLarge {
                    size: m.body.len(),
                    limit,
                });
            }
            let delay = m.delay.unwrap_or(self.attributes().delay);
            if delay > MAX_DELAY {
                return Err(Error::InvalidArgument {
                    field: "delay",
                    message: "must be between 0 and 3600 s".into(),
                });
            }
            bodies.push(m.body.as_str());
            // Arrays of nullable text do not type-check in `query!`; '' stands for none.
            groups.push(m.group.as_deref().unwrap_or(""));
            delays.push(delay.as_secs_f64());
        }
        let mut ids = sqlx::query_scalar!(
            r#"
            insert into queue_messages (queue_id, body, message_group, visible_at)
            select $1, m.body, nullif(m.grp, ''), now() + make_interval(secs => m.delay)
            from unnest($2::text[], $3::text[], $4::float8[]) with ordinality
                 as m(body, grp, delay, ord)
            order by m.ord
            returning id
            "#,
            self.id(),
            &bodies as &[&str],
            &groups as &[&str],
            &delays,
        )
        .fetch_all(&mut *conn)
        .await?;
        ids.sort_unstable();
        Ok(ids)
    }
}
