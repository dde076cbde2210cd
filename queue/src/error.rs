//! Typed errors of the queue API.

/// What can go wrong when using a queue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("queue `{0}` does not exist")]
    QueueNotFound(String),
    #[error("topic `{0}` does not exist")]
    TopicNotFound(String),
    #[error("subscription `{0}` does not exist")]
    SubscriptionNotFound(String),
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
    #[error("shard `{0}` is unreachable; messages on other shards are unaffected")]
    ShardUnavailable(String),
    /// A batch spread over several shards was sent only in part: `sent`
    /// holds, in message order, what each message became (`None`: not sent).
    #[error("batch sent in part ({} of {}): {cause}", sent.iter().flatten().count(), sent.len())]
    PartlySent {
        sent: Vec<Option<crate::MessageRef>>,
        cause: Box<Error>,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// What a statement serving several calls at once met (see group
    /// commit in `send`, `receive` and `delete`), shared by all of them.
    #[error(transparent)]
    Grouped(std::sync::Arc<Error>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the error says the database could not be reached (rather than
    /// that it refused the request): a router then tries another shard.
    pub(crate) fn is_unreachable(&self) -> bool {
        match self {
            Error::ShardUnavailable(_) => true,
            Error::Grouped(e) => e.is_unreachable(),
            Error::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // Class 08: connection exceptions; 57P: the server shutting
                // down or starting up.
                sqlx::Error::Database(d) => d
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            },
            _ => false,
        }
    }
}
