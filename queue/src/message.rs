//! What a receive hands out and a delete takes back: the leased
//! [`Message`], its [`Receipt`], why it was dead-lettered, and the row a
//! receive statement returns.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Error, Result};

/// Proof of one lease on one message: needed to delete it or extend the lease.
///
/// Written as `<message id>.<row>.<lease token>`, where `row` is the live row
/// the message was received in (see the migration). Every
/// receive issues a new token, so a receipt from an earlier delivery of the
/// same message no longer matches. A message received from a shard other
/// than the control database (see [`crate::Router`]) has `<shard>:` in
/// front, so the receipt finds its way back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub(crate) shard: i32,
    pub(crate) id: i64,
    pub(crate) row: i64,
    pub(crate) lease: Uuid,
}

impl Receipt {
    /// The id of the message this receipt is for.
    pub fn message_id(&self) -> i64 {
        self.id
    }

    /// The shard the message lives on; 0 is the control database.
    pub fn shard(&self) -> i32 {
        self.shard
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shard != 0 {
            write!(f, "{}:", self.shard)?;
        }
        write!(f, "{}.{}.{}", self.id, self.row, self.lease.simple())
    }
}

impl FromStr for Receipt {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let malformed = || Error::MalformedReceipt(s.chars().take(100).collect());
        let (shard, rest) = match s.split_once(':') {
            Some((shard, rest)) => match shard.parse::<i32>() {
                Ok(n) if n > 0 => (n, rest),
                _ => return Err(malformed()),
            },
            None => (0, s),
        };
        let mut parts = rest.split('.');
        let (Some(id), Some(row), Some(lease), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let receipt = Receipt {
            shard,
            id: id.parse().map_err(|_| malformed())?,
            row: row.parse().map_err(|_| malformed())?,
            lease: Uuid::try_parse(lease).map_err(|_| malformed())?,
        };
        Ok(receipt)
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
    /// Why the message is in this (dead letter) queue, if it was moved here.
    pub dead_letter_reason: Option<DeadLetterReason>,
    /// The queue it was moved here from, if it is a dead letter.
    pub dead_letter_source: Option<String>,
}

/// Why a message was moved to a dead letter queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// Received `max_receive_count` times without being deleted.
    MaxReceives,
    /// Its queue's retention ran out before it was deleted.
    Expired,
}

impl DeadLetterReason {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "max_receives" => Some(Self::MaxReceives),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// A leased live row with its messages, or (without them) a row past its
/// receive limit.
pub(crate) struct Row {
    pub(crate) row_id: i64,
    pub(crate) ids: Option<Vec<i64>>,
    pub(crate) bodies: Option<Vec<String>>,
    pub(crate) receive_count: i32,
    pub(crate) enqueued_at: DateTime<Utc>,
    pub(crate) first_received_at: DateTime<Utc>,
    pub(crate) dead_letter_reason: Option<String>,
    pub(crate) dead_letter_source: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_round_trips_through_text() {
        let mut r = Receipt {
            shard: 0,
            id: 42,
            row: 40,
            lease: Uuid::new_v4(),
        };
        assert_eq!(r.to_string().parse::<Receipt>().unwrap(), r);
        r.shard = 3;
        assert!(r.to_string().starts_with("3:42.40."));
        assert_eq!(r.to_string().parse::<Receipt>().unwrap(), r);
    }

    #[test]
    fn garbage_receipt_is_malformed() {
        assert!(matches!(
            "nope".parse::<Receipt>(),
            Err(Error::MalformedReceipt(_))
        ));
        assert!(matches!(
            "12.10.not-a-uuid".parse::<Receipt>(),
            Err(Error::MalformedReceipt(_))
        ));
        let lease = Uuid::new_v4().simple();
        for bad in [
            format!("12.{lease}"),
            format!("x.12.{lease}"),
            format!("1.1.{lease}.1"),
            format!("0:1.1.{lease}"),
            format!("x:1.1.{lease}"),
        ] {
            assert!(matches!(
                bad.parse::<Receipt>(),
                Err(Error::MalformedReceipt(_))
            ));
        }
    }
}
