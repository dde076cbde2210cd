//! SQS errors: a code SDKs turn into typed exceptions, who is at fault, and
//! the HTTP status, answered in the request's protocol (see `protocol`).

use axum::http::StatusCode;

/// An error as SQS reports it.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct SqsError {
    pub(crate) status: StatusCode,
    /// The query protocol's code (`AWS.SimpleQueueService.NonExistentQueue`);
    /// JSON clients read it from `x-amzn-query-error`.
    pub(crate) code: &'static str,
    /// The JSON protocol's `__type` shape name (`QueueDoesNotExist`).
    pub(crate) shape: &'static str,
    /// `Sender` (the request is wrong) or `Receiver` (we failed).
    pub(crate) fault: Fault,
    pub(crate) message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Sender,
    Receiver,
}

impl Fault {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

pub(crate) type SqsResult<T> = Result<T, SqsError>;

fn sender(
    status: StatusCode,
    code: &'static str,
    shape: &'static str,
    message: impl Into<String>,
) -> SqsError {
    SqsError {
        status,
        code,
        shape,
        fault: Fault::Sender,
        message: message.into(),
    }
}

impl SqsError {
    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValue",
            "InvalidParameterValueException",
            message,
        )
    }

    pub(crate) fn missing_parameter(name: &str) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "MissingRequiredParameterException",
            format!("The request must contain the parameter {name}."),
        )
    }

    pub(crate) fn invalid_action(action: &str) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "InvalidAction",
            format!("The action {action} is not valid for this endpoint."),
        )
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "MalformedQueryString",
            "MalformedQueryString",
            message,
        )
    }

    pub(crate) fn no_queue() -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
            "The specified queue does not exist.",
        )
    }

    pub(crate) fn queue_exists(name: &str) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "QueueAlreadyExists",
            "QueueNameExists",
            format!("A queue named {name} already exists with different attributes."),
        )
    }

    pub(crate) fn invalid_attribute_name(name: &str) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "InvalidAttributeName",
            "InvalidAttributeName",
            format!("Unknown Attribute {name}."),
        )
    }

    pub(crate) fn invalid_attribute_value(name: &str, why: impl std::fmt::Display) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "InvalidAttributeValue",
            "InvalidAttributeValue",
            format!("Invalid value for the parameter {name}: {why}"),
        )
    }

    pub(crate) fn invalid_message_contents(message: impl Into<String>) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "InvalidMessageContents",
            "InvalidMessageContents",
            message,
        )
    }

    /// A malformed receipt handle of a single call (SQS names it only in
    /// a batch's failed entries, see [`SqsError::receipt_entry_invalid`]).
    pub(crate) fn receipt_invalid() -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            "The input receipt handle is invalid.",
        )
    }

    pub(crate) fn receipt_entry_invalid(receipt: &str) -> Self {
        SqsError {
            message: format!(
                "The input receipt handle \"{}\" is not a valid receipt handle.",
                receipt.chars().take(100).collect::<String>()
            ),
            ..Self::receipt_invalid()
        }
    }

    pub(crate) fn not_inflight() -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.MessageNotInflight",
            "MessageNotInflight",
            "Message does not exist or is not available for visibility timeout change.",
        )
    }

    /// `entry`: the action's entry type, `SendMessageBatchRequestEntry`.
    pub(crate) fn empty_batch(entry: &str) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "EmptyBatchRequest",
            format!("There should be at least one {entry} in the request."),
        )
    }

    pub(crate) fn too_many_entries(n: usize) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            "TooManyEntriesInBatchRequest",
            format!("Maximum number of entries per request are 10. You have sent {n}."),
        )
    }

    pub(crate) fn ids_not_distinct(id: &str) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            "BatchEntryIdsNotDistinct",
            format!("Id {id} repeated."),
        )
    }

    pub(crate) fn invalid_batch_id() -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.InvalidBatchEntryId",
            "InvalidBatchEntryId",
            "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
        )
    }

    pub(crate) fn batch_too_long(size: usize, limit: usize) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.BatchRequestTooLong",
            "BatchRequestTooLong",
            format!(
                "Batch requests cannot be longer than {limit} bytes. You have sent {size} bytes."
            ),
        )
    }

    pub(crate) fn deleted_recently() -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.QueueDeletedRecently",
            "QueueDeletedRecently",
            "You must wait 60 seconds after deleting a queue before you can create another with the same name.",
        )
    }

    pub(crate) fn purge_in_progress(queue: &str) -> Self {
        sender(
            StatusCode::FORBIDDEN,
            "AWS.SimpleQueueService.PurgeQueueInProgress",
            "PurgeQueueInProgress",
            format!("Only one PurgeQueue operation on {queue} is allowed every 60 seconds."),
        )
    }

    pub(crate) fn over_limit(message: impl Into<String>) -> Self {
        sender(StatusCode::FORBIDDEN, "OverLimit", "OverLimit", message)
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "AWS.SimpleQueueService.UnsupportedOperation",
            "UnsupportedOperation",
            message,
        )
    }

    pub(crate) fn resource_not_found(message: impl Into<String>) -> Self {
        sender(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "ResourceNotFoundException",
            message,
        )
    }

    // Authentication, as SQS words it.

    pub(crate) fn missing_authentication() -> Self {
        sender(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationToken",
            "MissingAuthenticationToken",
            "Requests must be signed with AWS Signature Version 4 and an access key listed in DARKROOM_SQS_ACCESS_KEYS.",
        )
    }

    pub(crate) fn incomplete_signature(message: impl Into<String>) -> Self {
        sender(
            StatusCode::FORBIDDEN,
            "IncompleteSignature",
            "IncompleteSignature",
            message,
        )
    }

    pub(crate) fn unknown_key() -> Self {
        sender(
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    }

    pub(crate) fn signature_mismatch() -> Self {
        sender(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        )
    }

    pub(crate) fn request_expired() -> Self {
        sender(
            StatusCode::FORBIDDEN,
            "RequestExpired",
            "RequestExpired",
            "Request has expired: its X-Amz-Date is more than 15 minutes from the server's time.",
        )
    }

    pub(crate) fn access_denied(message: impl Into<String>) -> Self {
        sender(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "AccessDenied",
            message,
        )
    }

    pub(crate) fn request_too_large(limit: usize) -> Self {
        sender(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "RequestEntityTooLarge",
            format!(
                "The request body is over {limit} bytes, more than any SQS request needs (a message is at most 1 MiB); it was refused unread."
            ),
        )
    }

    pub(crate) fn unavailable() -> Self {
        SqsError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "ServiceUnavailable",
            shape: "ServiceUnavailable",
            fault: Fault::Receiver,
            message: "A shard this request needs is unreachable; retry later.".into(),
        }
    }

    pub(crate) fn internal() -> Self {
        SqsError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalFailure",
            shape: "InternalFailure",
            fault: Fault::Receiver,
            message: "The request processing has failed because of an unknown error.".into(),
        }
    }
}

impl From<crate::Error> for SqsError {
    fn from(e: crate::Error) -> Self {
        use crate::Error;
        match e {
            Error::QueueNotFound(_) => SqsError::no_queue(),
            Error::InvalidAttribute { field, message } => {
                SqsError::invalid_attribute_value(field, message)
            }
            Error::InvalidArgument { field, message } => {
                SqsError::invalid_parameter(format!("{field}: {message}"))
            }
            Error::MessageTooLarge { size, limit } => SqsError::invalid_parameter(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes (it is {size})."
            )),
            Error::MalformedReceipt(_) => SqsError::receipt_invalid(),
            Error::StaleReceipt => SqsError::not_inflight(),
            e if e.is_unreachable() => {
                tracing::warn!(error = %e, "SQS request failed: a shard is unreachable");
                SqsError::unavailable()
            }
            e => {
                tracing::error!(error = ?e, "SQS request failed");
                SqsError::internal()
            }
        }
    }
}
