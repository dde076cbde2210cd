//! Whether the key a request was signed with may do what it asks: the
//! queue each action acts on, judged by the key's grant (see `grants`).

use super::error::{SqsError, SqsResult};
use super::grants::{self, Grant};
use super::{Ctx, Input};

/// The key a request was signed with, and what it may do.
pub(super) struct Access<'a> {
    key_id: String,
    grant: &'a Grant,
}

impl<'a> Access<'a> {
    pub(super) fn new(key_id: String, grant: &'a Grant) -> Self {
        Self { key_id, grant }
    }

    pub(super) fn key_id(&self) -> &str {
        &self.key_id
    }

    pub(super) fn may(&self, action: &str, queue: &str) -> bool {
        self.grant.allows(action, queue)
    }

    /// Refuses `action` on `queue` unless the key's grant allows it.
    pub(super) fn check(&self, action: &str, queue: &str) -> SqsResult<()> {
        if self.may(action, queue) {
            return Ok(());
        }
        let note = if grants::is_reserved(queue) {
            format!(
                "; {}* queues are granted only by their exact name",
                grants::RESERVED_PREFIX
            )
        } else {
            String::new()
        };
        Err(self.denied(action, &format!("queue: {queue}"), &note))
    }

    /// Refuses an action that names no queue unless the key may use it on
    /// some queue.
    fn check_action(&self, action: &str) -> SqsResult<()> {
        if self.grant.allows_action(action) {
            return Ok(());
        }
        Err(self.denied(action, "any queue", ""))
    }

    fn denied(&self, action: &str, what: &str, note: &str) -> SqsError {
        let permission = grants::permission(action).unwrap_or(action);
        SqsError::access_denied(format!(
            "Key {} is not authorized to perform: sqs:{permission} on {what} (its grant in DARKROOM_SQS_ACCESS_KEYS does not allow it{note}).",
            self.key_id
        ))
    }
}

/// Refuses a request whose key may not do `action` on the queue it names.
/// What an action does beyond that queue is checked where it happens: the
/// queues a listing returns, a redrive policy's target, a move's
/// destination.
pub(super) fn authorize(ctx: &Ctx<'_>, action: &str, input: &Input) -> SqsResult<()> {
    let access = &ctx.access;
    match action {
        "CreateQueue" | "GetQueueUrl" => access.check(action, input.required("QueueName")?),
        "ListQueues" | "CancelMessageMoveTask" => access.check_action(action),
        "GetCallerIdentity" => Ok(()),
        "StartMessageMoveTask" | "ListMessageMoveTasks" => {
            access.check(action, &ctx.native_of_arn(input.required("SourceArn")?)?)
        }
        _ if grants::permission(action).is_some() => access.check(action, input.queue()?),
        _ => Err(SqsError::invalid_action(action)),
    }
}
