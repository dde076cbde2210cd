//! What each entry of the attribute table works on: one setting being
//! checked, the change the settings add up to, and the queue being read
//! back. Kept apart from the table so that the table reads as a list.

use std::fmt::Display;

use serde_json::{Map, Value};

use super::Extra;
use crate::sqs::error::{SqsError, SqsResult};
use crate::{QueueAttributes, QueueKind};

/// What the attributes of a CreateQueue or SetQueueAttributes do.
pub(crate) struct Change {
    pub(crate) native: QueueAttributes,
    pub(crate) extra: Map<String, Value>,
}

impl Change {
    /// Keeps `value` among the SQS-only attributes.
    pub(super) fn keep(&mut self, name: &str, value: impl Into<String>) {
        self.extra
            .insert(name.to_owned(), Value::String(value.into()));
    }
}

/// One attribute of a CreateQueue or SetQueueAttributes, with what its
/// checks depend on.
pub(super) struct Setting<'a> {
    pub(super) name: &'a str,
    pub(super) value: &'a str,
    pub(super) fifo: bool,
    pub(super) creating: bool,
    /// The endpoint's own region, whose queues an ARN names by name alone.
    pub(super) home_region: &'a str,
}

impl Setting<'_> {
    pub(super) fn invalid(&self, why: impl Display) -> SqsError {
        SqsError::invalid_attribute_value(self.name, why)
    }

    pub(super) fn whole_number(&self, min: u64, max: u64) -> SqsResult<u64> {
        match self.value.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.invalid(format!("must be a whole number from {min} to {max}"))),
        }
    }

    pub(super) fn boolean(&self) -> SqsResult<bool> {
        match self.value {
            "true" | "True" => Ok(true),
            "false" | "False" => Ok(false),
            _ => Err(self.invalid("must be true or false")),
        }
    }

    pub(super) fn one_of(&self, allowed: &[&str]) -> SqsResult<()> {
        if allowed.contains(&self.value) {
            Ok(())
        } else {
            Err(self.invalid(format!("must be {}", allowed.join(" or "))))
        }
    }

    /// SQS does not know a FIFO attribute on a standard queue: it refuses
    /// its name, whatever its value.
    pub(super) fn fifo_only(&self) -> SqsResult<()> {
        if self.fifo {
            Ok(())
        } else {
            Err(SqsError::invalid_attribute_name(self.name))
        }
    }
}

/// A queue as GetQueueAttributes reads it.
pub(super) struct QueueView<'a> {
    pub(super) native: &'a QueueAttributes,
    pub(super) extra: &'a Extra,
    pub(super) stats: &'a crate::Stats,
    pub(super) arn: &'a str,
    pub(super) dead_letter_arn: &'a dyn Fn(&str) -> String,
}

impl QueueView<'_> {
    pub(super) fn fifo(&self) -> bool {
        self.native.kind == QueueKind::Ordered
    }

    /// A FIFO attribute, `default` when never set; none on a standard
    /// queue.
    pub(super) fn fifo_or(&self, name: &str, default: &str) -> Option<String> {
        self.fifo()
            .then(|| self.extra.get(name).unwrap_or(default).to_owned())
    }
}
