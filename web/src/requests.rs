//! Request messages for workers, sent with the rows that describe them
//! (an upload's outputs, recipes added to a job, a retried output) by
//! [`queue::Routed::send_batch_in`]: in the rows' transaction wherever the
//! request queue's placement allows.

use common::protocol::Request;
use queue::NewMessage;

/// The message asking a worker to make one output.
pub fn message(request: &Request) -> serde_json::Result<NewMessage> {
    serde_json::to_string(request).map(NewMessage::new)
}
