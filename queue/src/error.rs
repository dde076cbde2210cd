//! Typed errors of the queue API.

/// What can go wrong when using a queue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("queue `{0}` does not exist")]
    QueueNotFound(String),
    #[error("invalid queue attribute `{field}`: {message}")]
    InvalidAttribute {
        field: &'static str,
        message: String,
    },
    #[error("invalid argument `{field}`: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error("message is {size} bytes, over the queue's limit of {limit} bytes")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("receipt is malformed: {0}")]
    MalformedReceipt(String),
    #[error("receipt is stale: the lock expired or the message was received again")]
    StaleReceipt,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
