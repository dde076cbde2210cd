//! SQS queue attributes: those with a native counterpart map onto
//! [`QueueAttributes`]; the rest are kept as SQS spells them (see `extra`).

use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};

use super::error::{SqsError, SqsResult};
use crate::{QueueAttributes, QueueKind};

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

/// Attributes stored as given, with no native counterpart.
const STORED: &[&str] = &[
    "MaximumMessageSize",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "Policy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    // SQS allows 0; a native lock is at least 1 s, so 0 is kept here.
    "VisibilityTimeout",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
];

/// Attributes a receive can ask for, read-only ones included.
pub(crate) const READABLE: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "Policy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
];

/// A queue's SQS-only attributes and tags.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extra {
    pub(crate) attributes: Map<String, Value>,
    pub(crate) tags: Map<String, Value>,
}

impl Extra {
    fn get(&self, name: &str) -> Option<&str> {
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

/// What the attributes of a CreateQueue or SetQueueAttributes do.
pub(crate) struct Change {
    pub(crate) native: QueueAttributes,
    pub(crate) extra: Map<String, Value>,
}

fn seconds(name: &str, value: &str, min: u64, max: u64) -> SqsResult<u64> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(SqsError::invalid_attribute_value(
            name,
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

fn boolean(name: &str, value: &str) -> SqsResult<bool> {
    match value {
        "true" | "True" => Ok(true),
        "false" | "False" => Ok(false),
        _ => Err(SqsError::invalid_attribute_value(
            name,
            "must be true or false",
        )),
    }
}

/// The queue name an ARN names (`arn:aws:sqs:region:account:name`).
pub(crate) fn name_of_arn(arn: &str) -> SqsResult<&str> {
    match arn.split(':').collect::<Vec<_>>()[..] {
        ["arn", _, "sqs", _, _, name] if !name.is_empty() => Ok(name),
        _ => Err(SqsError::invalid_parameter(format!(
            "`{}` is not an SQS queue ARN.",
            arn.chars().take(200).collect::<String>()
        ))),
    }
}

/// Applies SQS `attributes` on top of `native` (a queue's current ones, or
/// the defaults of a new one).
pub(crate) fn apply(
    mut native: QueueAttributes,
    attributes: &Map<String, Value>,
    fifo: bool,
    creating: bool,
) -> SqsResult<Change> {
    let mut extra = Map::new();
    for (name, value) in attributes {
        // SQS reads `"VisibilityTimeout "` as VisibilityTimeout.
        let name = &name.trim().to_owned();
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(SqsError::invalid_attribute_value(name, "must be a string")),
        };
        match name.as_str() {
            "DelaySeconds" => {
                native.delay = Duration::from_secs(seconds(name, &value, 0, MAX_DELAY)?);
            }
            "MessageRetentionPeriod" => {
                native.retention = Some(Duration::from_secs(seconds(
                    name,
                    &value,
                    60,
                    14 * 24 * 3600,
                )?));
            }
            "ReceiveMessageWaitTimeSeconds" => {
                native.polling_wait = Duration::from_secs(seconds(name, &value, 0, MAX_WAIT)?);
            }
            "VisibilityTimeout" => {
                let secs = seconds(name, &value, 0, MAX_VISIBILITY)?;
                native.visibility_timeout = Duration::from_secs(secs.max(1));
                extra.insert(name.clone(), Value::String(secs.to_string()));
            }
            "MaximumMessageSize" => {
                let n = seconds(name, &value, 1024, u64::from(MAX_MESSAGE_SIZE))?;
                extra.insert(name.clone(), Value::String(n.to_string()));
            }
            "RedrivePolicy" => {
                if value.is_empty() {
                    native.dead_letter_queue = None;
                    native.max_receive_count = None;
                    continue;
                }
                let policy: Value = serde_json::from_str(&value).map_err(|_| {
                    SqsError::invalid_attribute_value(name, "must be a JSON object")
                })?;
                let arn = policy
                    .get("deadLetterTargetArn")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        SqsError::invalid_attribute_value(name, "deadLetterTargetArn is missing")
                    })?;
                let max = match policy.get("maxReceiveCount") {
                    Some(Value::Number(n)) => n.as_u64(),
                    Some(Value::String(s)) => s.parse().ok(),
                    _ => None,
                }
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    SqsError::invalid_attribute_value(
                        name,
                        "maxReceiveCount must be a number from 1 to 1000",
                    )
                })?;
                native.dead_letter_queue = Some(name_of_arn(arn)?.to_owned());
                native.max_receive_count = Some(max as u32);
            }
            "FifoQueue" => {
                if boolean(name, &value)? != fifo || !creating {
                    return Err(SqsError::invalid_attribute_value(
                        name,
                        "a FIFO queue's name ends in .fifo and FifoQueue can only be set when it is created",
                    ));
                }
            }
            "ContentBasedDeduplication" | "DeduplicationScope" | "FifoThroughputLimit" if !fifo => {
                return Err(SqsError::invalid_attribute_name(name));
            }
            "ContentBasedDeduplication" | "SqsManagedSseEnabled" => {
                extra.insert(
                    name.clone(),
                    Value::String(boolean(name, &value)?.to_string()),
                );
            }
            "DeduplicationScope" if !matches!(value.as_str(), "messageGroup" | "queue") => {
                return Err(SqsError::invalid_attribute_value(
                    name,
                    "must be messageGroup or queue",
                ));
            }
            "FifoThroughputLimit"
                if !matches!(value.as_str(), "perQueue" | "perMessageGroupId") =>
            {
                return Err(SqsError::invalid_attribute_value(
                    name,
                    "must be perQueue or perMessageGroupId",
                ));
            }
            // An empty value removes the attribute (see `ExtraCache::store`).
            n if STORED.contains(&n) && !n.ends_with("Timestamp") => {
                let value = if value.is_empty() {
                    Value::Null
                } else {
                    Value::String(value)
                };
                extra.insert(name.clone(), value);
            }
            _ => return Err(SqsError::invalid_attribute_name(name)),
        }
    }
    native.kind = if fifo {
        QueueKind::Ordered
    } else {
        native.kind
    };
    let now = Utc::now().timestamp().to_string();
    if creating {
        native.max_message_bytes = NATIVE_MAX_BYTES;
        extra.insert("CreatedTimestamp".into(), Value::String(now.clone()));
    }
    extra.insert("LastModifiedTimestamp".into(), Value::String(now));
    native.validate()?;
    Ok(Change { native, extra })
}

/// Every readable attribute of a queue, as SQS writes them.
pub(crate) fn describe(
    native: &QueueAttributes,
    extra: &Extra,
    stats: &crate::Stats,
    arn: &str,
    dead_letter_arn: impl Fn(&str) -> String,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |k: &str, v: String| {
        out.insert(k.to_owned(), Value::String(v));
    };
    put("QueueArn", arn.to_owned());
    put("ApproximateNumberOfMessages", stats.visible.to_string());
    put(
        "ApproximateNumberOfMessagesNotVisible",
        stats.in_flight.to_string(),
    );
    put(
        "ApproximateNumberOfMessagesDelayed",
        stats.delayed.to_string(),
    );
    put("DelaySeconds", native.delay.as_secs().to_string());
    put(
        "MessageRetentionPeriod",
        native
            .retention
            .map_or(14 * 24 * 3600, |r| r.as_secs())
            .to_string(),
    );
    put(
        "ReceiveMessageWaitTimeSeconds",
        native.polling_wait.as_secs().to_string(),
    );
    let visibility = if extra.visibility_zero() {
        0
    } else {
        native.visibility_timeout.as_secs()
    };
    put("VisibilityTimeout", visibility.to_string());
    put("MaximumMessageSize", extra.max_message_size().to_string());
    put(
        "SqsManagedSseEnabled",
        extra
            .get("SqsManagedSseEnabled")
            .unwrap_or("false")
            .to_owned(),
    );
    for time in ["CreatedTimestamp", "LastModifiedTimestamp"] {
        put(time, extra.get(time).unwrap_or("0").to_owned());
    }
    // Written as SQS writes it: compact, the count a number.
    if let (Some(dlq), Some(max)) = (&native.dead_letter_queue, native.max_receive_count) {
        let policy = serde_json::json!({
            "deadLetterTargetArn": dead_letter_arn(dlq),
            "maxReceiveCount": max,
        });
        put("RedrivePolicy", policy.to_string());
    }
    if native.kind == QueueKind::Ordered {
        put("FifoQueue", "true".into());
        put(
            "ContentBasedDeduplication",
            extra.content_based_dedup().to_string(),
        );
        put(
            "DeduplicationScope",
            extra
                .get("DeduplicationScope")
                .unwrap_or("queue")
                .to_owned(),
        );
        put(
            "FifoThroughputLimit",
            extra
                .get("FifoThroughputLimit")
                .unwrap_or("perQueue")
                .to_owned(),
        );
    }
    for name in [
        "Policy",
        "RedriveAllowPolicy",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
    ] {
        if let Some(v) = extra.get(name) {
            put(name, v.to_owned());
        }
    }
    out
}
