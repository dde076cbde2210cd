//! What the API reads and writes: request bodies and views, in the shapes
//! the OpenAPI description documents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::QueueKind;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AttributesBody {
    pub(super) kind: Option<QueueKind>,
    pub(super) visibility_timeout: Option<f64>,
    #[serde(default, with = "double_option")]
    pub(super) max_receive_count: Option<Option<u32>>,
    #[serde(default, with = "double_option")]
    pub(super) dead_letter_queue: Option<Option<String>>,
    /// Seconds; null keeps messages until they are deleted.
    #[serde(default, with = "double_option")]
    pub(super) retention: Option<Option<f64>>,
    pub(super) rewind_window: Option<f64>,
    pub(super) delay: Option<f64>,
    pub(super) max_message_bytes: Option<u32>,
    pub(super) polling_wait: Option<f64>,
}

/// Tells an absent field (keep) from an explicit null (clear).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct AttributesView {
    pub(super) name: String,
    pub(super) kind: QueueKind,
    pub(super) visibility_timeout: f64,
    pub(super) max_receive_count: Option<u32>,
    pub(super) dead_letter_queue: Option<String>,
    /// Null: messages are kept until they are deleted.
    pub(super) retention: Option<f64>,
    pub(super) rewind_window: f64,
    pub(super) delay: f64,
    pub(super) max_message_bytes: u32,
    pub(super) polling_wait: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stats: Option<crate::Stats>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct QueueList {
    pub(super) queues: Vec<AttributesView>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Sent {
    /// Increasing within the queue's shard, in the order of the messages
    /// sent.
    pub(super) ids: Vec<i64>,
    /// The shard each message went to (0: the control database).
    pub(super) shards: Vec<i32>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Received {
    pub(super) messages: Vec<MessageView>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Deleted {
    pub(super) deleted: Vec<String>,
    /// Receipts whose lock expired or whose message was received again.
    pub(super) stale: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Restored {
    pub(super) restored: u64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Moved {
    pub(super) moved: u64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Purged {
    pub(super) purged: u64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct QueueDeleted {
    pub(super) deleted: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Extended {
    pub(super) receipt: String,
}

/// Every error: 400 bad input, 401/403 token, 404 no queue, 409 stale
/// receipt, 413 message too big.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// How a queue is shown, with its stats when asked for.
pub(super) fn view(
    name: &str,
    a: &crate::QueueAttributes,
    stats: Option<crate::Stats>,
) -> AttributesView {
    AttributesView {
        name: name.to_owned(),
        kind: a.kind,
        visibility_timeout: a.visibility_timeout.as_secs_f64(),
        max_receive_count: a.max_receive_count,
        dead_letter_queue: a.dead_letter_queue.clone(),
        retention: a.retention.map(|r| r.as_secs_f64()),
        rewind_window: a.rewind_window.as_secs_f64(),
        delay: a.delay.as_secs_f64(),
        max_message_bytes: a.max_message_bytes,
        polling_wait: a.polling_wait.as_secs_f64(),
        stats,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SendBody {
    pub(super) messages: Vec<SendMessage>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SendMessage {
    pub(super) body: String,
    pub(super) delay: Option<f64>,
    pub(super) group: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReceiveBody {
    pub(super) max: Option<usize>,
    pub(super) lock: Option<f64>,
    pub(super) wait: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct MessageView {
    pub(super) id: i64,
    /// The shard the message lives on (0: the control database); ids are
    /// unique within a shard.
    pub(super) shard: i32,
    pub(super) body: String,
    pub(super) receipt: String,
    pub(super) receive_count: i32,
    pub(super) enqueued_at: DateTime<Utc>,
    pub(super) first_received_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteBody {
    pub(super) receipts: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct VisibilityBody {
    pub(super) receipt: String,
    pub(super) lock: f64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RewindBody {
    pub(super) to_time: Option<DateTime<Utc>>,
    pub(super) to_id: Option<i64>,
}
