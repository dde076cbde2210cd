//! Leasing messages.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::attributes::{check_batch, check_lock};
use crate::{Error, Queue, Result};

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
    /// Returns at once, possibly with no message.
    pub async fn receive(&self, max: usize, lock: Duration) -> Result<Vec<Message>> {
        check_batch("max", max)?;
        check_lock(lock)?;
        let lease = Uuid::new_v4();
        // SKIP LOCKED lets concurrent receivers pick disjoint rows without
        // waiting on each other; the lease lives in the row, not in a transaction.
        let rows = sqlx::query!(
            r#"
            with picked as (
                select id from queue_messages
                where queue_id = $1 and visible_at <= now()
                order by id
                limit $2
                for update skip locked
            )
            update queue_messages m
            set visible_at = now() + make_interval(secs => $3),
                lease = $4,
                receive_count = m.receive_count + 1,
                first_received_at = coalesce(m.first_received_at, now())
            from picked
            where m.queue_id = $1 and m.id = picked.id
            returning m.id, m.body, m.receive_count, m.enqueued_at,
                      m.first_received_at as "first_received_at!"
            "#,
            self.id(),
            max as i64,
            lock.as_secs_f64(),
            lease,
        )
        .fetch_all(&self.pool)
        .await?;
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
