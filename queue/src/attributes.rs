//! Queue attributes and their bounds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a queue orders deliveries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// Any number of messages in flight at once, delivered roughly in send order.
    #[default]
    Concurrent,
    /// Within a message group, strictly one message at a time in send order.
    Ordered,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Concurrent => "concurrent",
            QueueKind::Ordered => "ordered",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "ordered" => QueueKind::Ordered,
            _ => QueueKind::Concurrent,
        }
    }
}

/// The settings of a queue. Defaults follow Tencent CMQ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueAttributes {
    pub kind: QueueKind,
    /// Lock taken by a receive that names none (1 s to 12 h; default 30 s).
    pub visibility_timeout: Duration,
    /// Receives without delete before a message is dead-lettered (`None`: never).
    pub max_receive_count: Option<u32>,
    /// Where dead-lettered messages go.
    pub dead_letter_queue: Option<String>,
    /// How long an undeleted message is kept (default 4 days; `None`: until
    /// it is deleted). When it runs out, a queue with a dead letter queue
    /// moves the message there; other queues drop it.
    pub retention: Option<Duration>,
    /// How long a deleted message can still be rewound to (default 1 day).
    pub rewind_window: Duration,
    /// Delay before a newly sent message becomes visible (0 to 3600 s).
    pub delay: Duration,
    /// Largest accepted message body (default 1 MiB).
    pub max_message_bytes: u32,
    /// Long-poll wait of a receive that names none (0 to 30 s).
    pub polling_wait: Duration,
}

impl Default for QueueAttributes {
    fn default() -> Self {
        Self {
            kind: QueueKind::Concurrent,
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: None,
            dead_letter_queue: None,
            retention: Some(Duration::from_secs(4 * 24 * 3600)),
            rewind_window: Duration::from_secs(24 * 3600),
            delay: Duration::ZERO,
            max_message_bytes: 1024 * 1024,
            polling_wait: Duration::ZERO,
        }
    }
}

/// Longest lock a receiver may take.
pub const MAX_LOCK: Duration = Duration::from_secs(12 * 3600);
/// Longest delay a message may have.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Longest long-poll wait.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most messages sent, received or deleted in one call.
pub const MAX_BATCH: usize = 1000;

impl QueueAttributes {
    /// Checks every attribute against its bounds.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, message: &str| {
            Err(Error::InvalidAttribute {
                field,
                message: message.to_owned(),
            })
        };
        if self.visibility_timeout < Duration::from_secs(1) || self.visibility_timeout > MAX_LOCK {
            return invalid("visibility_timeout", "must be between 1 s and 12 h");
        }
        if self.delay > MAX_DELAY {
            return invalid("delay", "must be between 0 and 3600 s");
        }
        if self.polling_wait > MAX_WAIT {
            return invalid("polling_wait", "must be between 0 and 30 s");
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > 64 * 1024 * 1024 {
            return invalid("max_message_bytes", "must be between 1 byte and 64 MiB");
        }
        if self.retention.is_some_and(|r| r < Duration::from_secs(60)) {
            return invalid("retention", "must be at least 60 s");
        }
        if self.max_receive_count == Some(0) {
            return invalid(
                "max_receive_count",
                "must be at least 1 (or null for never)",
            );
        }
        if self.max_receive_count.is_some() != self.dead_letter_queue.is_some() {
            return invalid(
                "dead_letter_queue",
                "max_receive_count and dead_letter_queue must be set together",
            );
        }
        Ok(())
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Checks a receiver-chosen lock duration.
pub(crate) fn check_lock(lock: Duration) -> Result<()> {
    if lock < Duration::from_millis(1) || lock > MAX_LOCK {
        return Err(Error::InvalidArgument {
            field: "lock",
            message: "must be more than 0 and at most 12 h".into(),
        });
    }
    Ok(())
}

pub(crate) fn check_wait(wait: Duration) -> Result<()> {
    if wait > MAX_WAIT {
        return Err(Error::InvalidArgument {
            field: "wait",
            message: "must be between 0 and 30 s".into(),
        });
    }
    Ok(())
}

pub(crate) fn check_batch(field: &'static str, n: usize) -> Result<()> {
    if n == 0 || n > MAX_BATCH {
        return Err(Error::InvalidArgument {
            field,
            message: format!("must be between 1 and {MAX_BATCH}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        QueueAttributes::default().validate().unwrap();
    }

    #[test]
    fn lock_over_twelve_hours_is_rejected() {
        let attrs = QueueAttributes {
            visibility_timeout: MAX_LOCK + Duration::from_secs(1),
            ..Default::default()
        };
        assert!(matches!(
            attrs.validate(),
            Err(Error::InvalidAttribute {
                field: "visibility_timeout",
                ..
            })
        ));
    }

    #[test]
    fn dead_letter_needs_both_fields() {
        let attrs = QueueAttributes {
            max_receive_count: Some(3),
            ..Default::default()
        };
        assert!(attrs.validate().is_err());
    }
}
