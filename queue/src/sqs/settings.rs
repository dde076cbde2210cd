//! SQS queue attributes: those with a native counterpart map onto
//! [`QueueAttributes`]; the rest are kept as SQS spells them (see `extra`).
//!
//! Every attribute is one entry of [`ATTRIBUTES`], which says how a
//! CreateQueue or SetQueueAttributes sets it and how GetQueueAttributes
//! reads it back, so the two cannot drift apart.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::error::{SqsError, SqsResult};
use crate::{QueueAttributes, QueueKind};

mod setting;

pub(crate) use setting::Change;
use setting::{QueueView, Setting};

/// SQS's default message size limit since August 2025 (256 KiB before).
pub(crate) const DEFAULT_MAX_MESSAGE_SIZE: u32 = 1024 * 1024;
/// SQS's largest message size limit, and largest batch.
pub(crate) const MAX_MESSAGE_SIZE: u32 = 1024 * 1024;
/// What the native queue of an SQS queue accepts: the envelope (base64
/// binary attributes, JSON) on top of SQS's largest message.
pub(crate) const NATIVE_MAX_BYTES: u32 = 3 * MAX_MESSAGE_SIZE;
const MAX_VISIBILITY: u64 = 12 * 3600;
const MAX_DELAY: u64 = 900;
const MAX_WAIT: u64 = 20;
/// SQS's longest retention, which a queue that keeps its messages for
/// ever reports.
const MAX_RETENTION: u64 = 14 * 24 * 3600;

/// One SQS queue attribute.
struct Attribute {
    name: &'static str,
    /// How a CreateQueue or SetQueueAttributes checks and stores it; `None`
    /// for a read-only attribute, whose name SQS refuses there.
    set: Option<fn(&mut Change, &Setting) -> SqsResult<()>>,
    /// Its value as GetQueueAttributes writes it (given the attribute's
    /// name); `None` leaves it out.
    get: fn(&QueueView, &str) -> Option<String>,
}

/// Every attribute of a queue, in the order GetQueueAttributes writes them.
const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        name: "QueueArn",
        set: None,
        get: |queue, _| Some(queue.arn.to_owned()),
    },
    Attribute {
        name: "ApproximateNumberOfMessages",
        set: None,
        get: |queue, _| Some(queue.stats.visible.to_string()),
    },
    Attribute {
        name: "ApproximateNumberOfMessagesNotVisible",
        set: None,
        get: |queue, _| Some(queue.stats.in_flight.to_string()),
    },
    Attribute {
        name: "ApproximateNumberOfMessagesDelayed",
        set: None,
        get: |queue, _| Some(queue.stats.delayed.to_string()),
    },
    Attribute {
        name: "DelaySeconds",
        set: Some(|change, setting| {
            change.native.delay = Duration::from_secs(setting.whole_number(0, MAX_DELAY)?);
            Ok(())
        }),
        get: |queue, _| Some(queue.native.delay.as_secs().to_string()),
    },
    Attribute {
        name: "MessageRetentionPeriod",
        set: Some(|change, setting| {
            let secs = setting.whole_number(60, MAX_RETENTION)?;
            change.native.retention = Some(Duration::from_secs(secs));
            Ok(())
        }),
        get: |queue, _| {
            let retention = queue.native.retention;
            Some(retention.map_or(MAX_RETENTION, |r| r.as_secs()).to_string())
        },
    },
    Attribute {
        name: "ReceiveMessageWaitTimeSeconds",
        set: Some(|change, setting| {
            let secs = setting.whole_number(0, MAX_WAIT)?;
            change.native.polling_wait = Duration::from_secs(secs);
            Ok(())
        }),
        get: |queue, _| Some(queue.native.polling_wait.as_secs().to_string()),
    },
    Attribute {
        name: "VisibilityTimeout",
        set: Some(|change, setting| {
            let secs = setting.whole_number(0, MAX_VISIBILITY)?;
            // SQS allows 0; a native lock is at least 1 s, so 0 is kept
            // among the SQS-only attributes too.
            change.native.visibility_timeout = Duration::from_secs(secs.max(1));
            change.keep(setting.name, secs.to_string());
            Ok(())
        }),
        get: |queue, _| {
            let secs = if queue.extra.visibility_zero() {
                0
            } else {
                queue.native.visibility_timeout.as_secs()
            };
            Some(secs.to_string())
        },
    },
    Attribute {
        name: "MaximumMessageSize",
        set: Some(|change, setting| {
            let size = setting.whole_number(1024, u64::from(MAX_MESSAGE_SIZE))?;
            change.keep(setting.name, size.to_string());
            Ok(())
        }),
        get: |queue, _| Some(queue.extra.max_message_size().to_string()),
    },
    Attribute {
        name: "SqsManagedSseEnabled",
        set: Some(|change, setting| {
            change.keep(setting.name, setting.boolean()?.to_string());
            Ok(())
        }),
        // On by default since 2022, unless the queue is encrypted with a
        // KMS key instead.
        get: |queue, name| {
            let kms = queue.extra.get("KmsMasterKeyId").is_some();
            let default = if kms { "false" } else { "true" };
            Some(queue.extra.get(name).unwrap_or(default).to_owned())
        },
    },
    Attribute {
        name: "CreatedTimestamp",
        set: None,
        get: timestamp,
    },
    Attribute {
        name: "LastModifiedTimestamp",
        set: None,
        get: timestamp,
    },
    Attribute {
        name: "RedrivePolicy",
        set: Some(set_redrive_policy),
        get: redrive_policy,
    },
    Attribute {
        name: "FifoQueue",
        set: Some(|_, setting| {
            if setting.boolean()? != setting.fifo || !setting.creating {
                return Err(setting.invalid(
                    "a FIFO queue's name ends in .fifo and FifoQueue can only be set when it is created",
                ));
            }
            Ok(())
        }),
        get: |queue, _| queue.fifo().then(|| "true".to_owned()),
    },
    Attribute {
        name: "ContentBasedDeduplication",
        set: Some(|change, setting| {
            setting.fifo_only()?;
            change.keep(setting.name, setting.boolean()?.to_string());
            Ok(())
        }),
        get: |queue, _| {
            queue
                .fifo()
                .then(|| queue.extra.content_based_dedup().to_string())
        },
    },
    Attribute {
        name: "DeduplicationScope",
        set: Some(|change, setting| {
            setting.fifo_only()?;
            setting.one_of(&["messageGroup", "queue"])?;
            change.keep(setting.name, setting.value);
            Ok(())
        }),
        get: |queue, name| queue.fifo_or(name, "queue"),
    },
    Attribute {
        name: "FifoThroughputLimit",
        set: Some(|change, setting| {
            setting.fifo_only()?;
            setting.one_of(&["perQueue", "perMessageGroupId"])?;
            change.keep(setting.name, setting.value);
            Ok(())
        }),
        get: |queue, name| queue.fifo_or(name, "perQueue"),
    },
    as_given("Policy"),
    as_given("RedriveAllowPolicy"),
    as_given("KmsMasterKeyId"),
    as_given("KmsDataKeyReusePeriodSeconds"),
];

/// Attributes a GetQueueAttributes can ask for, read-only ones included.
pub(crate) const READABLE: &[&str] = &attribute_names();

const fn attribute_names() -> [&'static str; ATTRIBUTES.len()] {
    let mut names = [""; ATTRIBUTES.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = ATTRIBUTES[i].name;
        i += 1;
    }
    names
}

/// An attribute stored as given, with no native counterpart.
const fn as_given(name: &'static str) -> Attribute {
    Attribute {
        name,
        set: Some(|change, setting| {
            // An empty value removes the attribute (see `ExtraCache::store`).
            if setting.value.is_empty() {
                change.extra.insert(setting.name.to_owned(), Value::Null);
            } else {
                change.keep(setting.name, setting.value);
            }
            Ok(())
        }),
        get: |queue, name| queue.extra.get(name).map(str::to_owned),
    }
}

fn timestamp(queue: &QueueView, name: &str) -> Option<String> {
    Some(queue.extra.get(name).unwrap_or("0").to_owned())
}

fn set_redrive_policy(change: &mut Change, setting: &Setting) -> SqsResult<()> {
    let native = &mut change.native;
    if setting.value.is_empty() {
        native.dead_letter_queue = None;
        native.max_receive_count = None;
        return Ok(());
    }
    let policy: Value = serde_json::from_str(setting.value)
        .map_err(|_| setting.invalid("must be a JSON object"))?;
    let arn = policy
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .ok_or_else(|| setting.invalid("deadLetterTargetArn is missing"))?;
    let max = match policy.get("maxReceiveCount") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|n| (1..=1000).contains(n))
    .ok_or_else(|| setting.invalid("maxReceiveCount must be a number from 1 to 1000"))?;
    native.dead_letter_queue = Some(super::regions::native_of_arn(arn, setting.home_region)?);
    native.max_receive_count = Some(max as u32);
    Ok(())
}

/// Written as SQS writes it: compact, the count a number.
fn redrive_policy(queue: &QueueView, _: &str) -> Option<String> {
    let native = queue.native;
    let (Some(dlq), Some(max)) = (&native.dead_letter_queue, native.max_receive_count) else {
        return None;
    };
    let policy = json!({
        "deadLetterTargetArn": (queue.dead_letter_arn)(dlq),
        "maxReceiveCount": max,
    });
    Some(policy.to_string())
}

/// A queue's SQS-only attributes and tags.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extra {
    pub(crate) attributes: Map<String, Value>,
    pub(crate) tags: Map<String, Value>,
}

impl Extra {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }

    pub(crate) fn max_message_size(&self) -> u32 {
        self.get("MaximumMessageSize")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_MESSAGE_SIZE)
    }

    pub(crate) fn content_based_dedup(&self) -> bool {
        self.get("ContentBasedDeduplication") == Some("true")
    }

    /// A receive's lock when it names none: SQS's 0 is kept here.
    pub(crate) fn visibility_zero(&self) -> bool {
        self.get("VisibilityTimeout") == Some("0")
    }
}

/// An attribute's value as SQS takes it: SDKs send some as numbers or
/// booleans.
fn as_text(name: &str, value: &Value) -> SqsResult<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(SqsError::invalid_attribute_value(name, "must be a string")),
    }
}

/// Applies SQS `attributes` on top of `native` (a queue's current ones, or
/// the defaults of a new one).
pub(crate) fn apply(
    native: QueueAttributes,
    attributes: &Map<String, Value>,
    fifo: bool,
    creating: bool,
    home_region: &str,
) -> SqsResult<Change> {
    let mut change = Change {
        native,
        extra: Map::new(),
    };
    for (name, value) in attributes {
        // SQS reads `"VisibilityTimeout "` as VisibilityTimeout.
        let name = name.trim();
        let value = as_text(name, value)?;
        let set = ATTRIBUTES
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.set)
            .ok_or_else(|| SqsError::invalid_attribute_name(name))?;
        let setting = Setting {
            name,
            value: &value,
            fifo,
            creating,
            home_region,
        };
        set(&mut change, &setting)?;
    }
    if fifo {
        change.native.kind = QueueKind::Ordered;
    }
    let now = Utc::now().timestamp().to_string();
    if creating {
        change.native.max_message_bytes = NATIVE_MAX_BYTES;
        change.keep("CreatedTimestamp", now.clone());
    }
    change.keep("LastModifiedTimestamp", now);
    change.native.validate()?;
    Ok(change)
}

/// Every readable attribute of a queue, as SQS writes them.
pub(crate) fn describe(
    native: &QueueAttributes,
    extra: &Extra,
    stats: &crate::Stats,
    arn: &str,
    dead_letter_arn: impl Fn(&str) -> String,
) -> Map<String, Value> {
    let queue = QueueView {
        native,
        extra,
        stats,
        arn,
        dead_letter_arn: &dead_letter_arn,
    };
    ATTRIBUTES
        .iter()
        .filter_map(|a| Some((a.name.to_owned(), Value::String((a.get)(&queue, a.name)?))))
        .collect()
}
