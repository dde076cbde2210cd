//! Leasing messages.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::attributes::{MAX_WAIT, check_batch, check_lock};
use crate::notify::FALLBACK_POLL;
use crate::{Error, Queue, QueueKind, Result};

/// Proof of one lease on one message: needed to delete it or extend the lease.
///
/// Written as `<id>.<lease token>`. Every receive issues a new token, so a
/// receipt from an earlier delivery of the same message no longer matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub(crate) id: i64,
    pub(crate) lease: Uuid,
}

impl Receipt {
    /// The id of the message this receipt is for.
    pub fn message_id(&self) -> i64 {
        self.id
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.lease.simple())
    }
}

impl FromStr for Receipt {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let malformed = || Error::MalformedReceipt(s.chars().take(100).collect());
        let (id, lease) = s.split_once('.').ok_or_else(malformed)?;
        Ok(Receipt {
            id: id.parse().map_err(|_| malformed())?,
            lease: Uuid::try_parse(lease).map_err(|_| malformed())?,
        })
    }
}

/// A leased message.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: i64,
    pub body: String,
    pub receipt: Receipt,
    /// How many times the message has been delivered, this time included.
    pub receive_count: i32,
    pub enqueued_at: DateTime<Utc>,
    pub first_received_at: DateTime<Utc>,
}

impl Queue {
    /// Leases up to `max` visible messages, oldest first, for `lock`.
    ///
    /// Returns at once, possibly with no message. On an ordered queue at most
    /// one message per group is returned, and none of a group whose previous
    /// message is still leased. Messages already received `max_receive_count`
    /// times move to the dead letter queue instead of being returned.
    pub async fn receive(&self, max: usize, lock: Duration) -> Result<Vec<Message>> {
        check_batch("max", max)?;
        check_lock(lock)?;
        let lease = Uuid::new_v4();
        let (dlq, max_receives) = self.inner.dead_letter.unzip();
        let rows = match self.attributes().kind {
            QueueKind::Concurrent => {
                self.receive_concurrent(max, lock, lease, dlq, max_receives)
                    .await?
            }
            QueueKind::Ordered => {
                self.receive_ordered(max, lock, lease, dlq, max_receives)
                    .await?
            }
        };
        let mut messages: Vec<Message> = rows
            .into_iter()
            .map(|r| Message {
                id: r.id,
                body: r.body,
                receipt: Receipt { id: r.id, lease },
                receive_count: r.receive_count,
                enqueued_at: r.enqueued_at,
                first_received_at: r.first_received_at,
            })
            .collect();
        messages.sort_unstable_by_key(|m| m.id);
        Ok(messages)
    }

    /// Like [`Queue::receive`], but when nothing is visible waits up to `wait`
    /// for a message to arrive, returning as soon as one does.
    pub async fn receive_wait(
        &self,
        max: usize,
        lock: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>> {
        if wait > MAX_WAIT {
            return Err(Error::InvalidArgument {
                field: "wait",
                message: "must be between 0 and 30 s".into(),
            });
        }
        let deadline = Instant::now() + wait;
        let waiter = self.inner.hub.waiter(self.id());
        loop {
            // Register before looking, so a send between the look and the
            // wait still wakes us.
            let notified = waiter.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let messages = self.receive(max, lock).await?;
            let now = Instant::now();
            if !messages.is_empty() || now >= deadline {
                return Ok(messages);
            }
            let nap = (deadline - now).min(FALLBACK_POLL);
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn receive_concurrent(
        &self,
        max: usize,
        lock: Duration,
        lease: Uuid,
        dlq: Option<i32>,
        max_receives: Option<i32>,
    ) -> Result<Vec<Row>> {
        // SKIP LOCKED lets concurrent receivers pick disjoint rows without
        // waiting on each other. Picked rows past their receive limit are
        // dead-lettered by the same statement; the rest are leased. The
        // updates find their rows through the primary key (see the index
        // `queue_messages_queue` in the migration for why `id + 0`).
        Ok(sqlx::query_as!(
            Row,
            r#"
            with picked as (
                select id from queue_messages
                where queue_id = $1 and visible_at <= now()
                order by id + 0
                limit $2
                for update skip locked
            ), dead as (
                update queue_messages m
                set queue_id = $5, visible_at = now(), lease = null, receive_count = 0,
                    dead_letter_source = $1
                where m.id = any(array(select id from picked))
                  and $5::int4 is not null and m.receive_count >= $6
            ), leased as (
                update queue_messages m
                set visible_at = now() + make_interval(secs => $3),
                    lease = $4,
                    receive_count = m.receive_count + 1,
                    first_received_at = coalesce(m.first_received_at, now())
                where m.id = any(array(select id from picked))
                  and not ($5::int4 is not null and m.receive_count >= $6)
                returning m.id, m.receive_count, m.enqueued_at, m.first_received_at
            )
            select l.id, b.body, l.receive_count, l.enqueued_at,
                   l.first_received_at as "first_received_at!"
            from leased l join queue_bodies b on b.id = l.id
            "#,
            self.id(),
            max as i64,
            lock.as_secs_f64(),
            lease,
            dlq,
            max_receives.unwrap_or(i32::MAX),
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn receive_ordered(
        &self,
        max: usize,
        lock: Duration,
        lease: Uuid,
        dlq: Option<i32>,
        max_receives: Option<i32>,
    ) -> Result<Vec<Row>> {
        // Only the head (lowest id) of each group may be delivered, and only
        // when it is visible: a leased or delayed head holds its group back.
        Ok(sqlx::query_as!(
            Row,
            r#"
            with heads as (
                select distinct on (message_group) id, visible_at
                from queue_messages
                where queue_id = $1 and message_group is not null
                order by message_group, id
            ), picked as (
                select m.id from queue_messages m
                where m.id = any(array(select id from heads where visible_at <= now()))
                order by m.id
                limit $2
                for update of m skip locked
            ), dead as (
                update queue_messages m
                set queue_id = $5, visible_at = now(), lease = null, receive_count = 0,
                    dead_letter_source = $1
                where m.id = any(array(select id from picked))
                  and $5::int4 is not null and m.receive_count >= $6
            ), leased as (
                update queue_messages m
                set visible_at = now() + make_interval(secs => $3),
                    lease = $4,
                    receive_count = m.receive_count + 1,
                    first_received_at = coalesce(m.first_received_at, now())
                where m.id = any(array(select id from picked))
                  and not ($5::int4 is not null and m.receive_count >= $6)
                returning m.id, m.receive_count, m.enqueued_at, m.first_received_at
            )
            select l.id, b.body, l.receive_count, l.enqueued_at,
                   l.first_received_at as "first_received_at!"
            from leased l join queue_bodies b on b.id = l.id
            "#,
            self.id(),
            max as i64,
            lock.as_secs_f64(),
            lease,
            dlq,
            max_receives.unwrap_or(i32::MAX),
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

struct Row {
    id: i64,
    body: String,
    receive_count: i32,
    enqueued_at: DateTime<Utc>,
    first_received_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_round_trips_through_text() {
        let r = Receipt {
            id: 42,
            lease: Uuid::new_v4(),
        };
        assert_eq!(r.to_string().parse::<Receipt>().unwrap(), r);
    }

    #[test]
    fn garbage_receipt_is_malformed() {
        assert!(matches!(
            "nope".parse::<Receipt>(),
            Err(Error::MalformedReceipt(_))
        ));
        assert!(matches!(
            "12.not-a-uuid".parse::<Receipt>(),
            Err(Error::MalformedReceipt(_))
        ));
    }
}
