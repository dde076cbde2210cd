//! Topics: CMQ's publish/subscribe beside the queues. A message published
//! to a topic goes to every subscription whose filter takes it (see
//! `filter`): into a queue (protocol `queue`), in the publish's own
//! transaction, or to an HTTP endpoint (protocol `http`), through the
//! internal queue [`DELIVERY_QUEUE`], whose messages [`Pusher`]s lease,
//! POST and delete like any others. So a push survives a pusher's crash
//! (its lease runs out and another pusher takes the delivery), any number
//! of pushers share the work, and a slow endpoint never holds a publisher
//! up.
//!
//! Topics and their subscriptions live in one database (the control
//! database, with shards), and so must the queues they feed.
//!
//! # Layout
//! - `filter`: tag and routing-key matching.
//! - `admin`: create, list and delete topics; subscribe and unsubscribe.
//! - `publish`: the fan-out.
//! - `push`: HTTP delivery with CMQ's retry strategies.
//! - `in_flight`: the few slots each subscription may hold in a pusher.
//! - `breaker`: parking endpoints that keep failing.
//! - `clients`: the pushers' HTTP clients (no proxy unless asked).
//! - `signature`: the deliveries' HMAC signatures.
//! - `address`: the public addresses `public_only` subscriptions keep to.

mod address;
mod admin;
mod breaker;
mod clients;
mod filter;
mod in_flight;
mod publish;
mod push;
mod signature;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::attributes::{from_millis, millis};
use crate::{Queue, Queues};

use address::endpoint_key;
pub use address::public_host;
pub use admin::{SubscriptionInfo, TopicInfo};
pub use filter::MAX_TAGS;
pub use publish::Publication;
pub use push::Pusher;
pub use signature::signature;

/// The queue HTTP deliveries wait in (in the topics' database).
pub const DELIVERY_QUEUE: &str = "darkroom.topic.deliveries";

/// How a topic picks the subscriptions of a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopicFilter {
    /// By the message's tags (up to 5).
    #[default]
    Tag,
    /// By the message's routing key against binding keys.
    Routing,
}

impl TopicFilter {
    /// As stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TopicFilter::Tag => "tag",
            TopicFilter::Routing => "routing",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "routing" => TopicFilter::Routing,
            _ => TopicFilter::Tag,
        }
    }
}

/// A topic's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSettings {
    pub filter: TopicFilter,
    /// How long an HTTP delivery is retried (default 1 day).
    pub message_lifetime: Duration,
    /// Largest message body (default 1 MiB).
    pub max_message_bytes: u32,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            filter: TopicFilter::Tag,
            message_lifetime: Duration::from_secs(24 * 3600),
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// Where a subscription's messages go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Into the queue the endpoint names.
    Queue,
    /// POSTed to the endpoint URL.
    Http,
}

impl Protocol {
    /// As stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Queue => "queue",
            Protocol::Http => "http",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "queue" => Protocol::Queue,
            _ => Protocol::Http,
        }
    }
}

/// How failed HTTP deliveries are retried (CMQ's strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Three more tries, `interval` apart, then the delivery is dropped.
    Backoff { interval: Duration },
    /// Tries 1 s, 2 s, 4 s… apart (at most 512 s) for the topic's message
    /// lifetime.
    ExponentialDecay,
}

impl RetryPolicy {
    /// As stored: the strategy's CMQ name, and BACKOFF_RETRY's interval in
    /// milliseconds.
    pub(crate) fn stored(self) -> (&'static str, i64) {
        match self {
            RetryPolicy::Backoff { interval } => ("BACKOFF_RETRY", millis(interval).max(100)),
            RetryPolicy::ExponentialDecay => ("EXPONENTIAL_DECAY_RETRY", 10_000),
        }
    }

    pub(crate) fn parse(s: &str, interval_ms: i64) -> Self {
        match s {
            "BACKOFF_RETRY" => RetryPolicy::Backoff {
                interval: from_millis(interval_ms),
            },
            _ => RetryPolicy::ExponentialDecay,
        }
    }
}

/// How an HTTP delivery's body is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BodyFormat {
    /// A JSON object: the topic, subscription, message id, body, tags,
    /// routing key and publish time.
    #[default]
    Json,
    /// The message body alone.
    Simplified,
}

impl BodyFormat {
    /// As stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BodyFormat::Json => "JSON",
            BodyFormat::Simplified => "SIMPLIFIED",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "SIMPLIFIED" => BodyFormat::Simplified,
            _ => BodyFormat::Json,
        }
    }
}

/// A subscription's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionSpec {
    pub protocol: Protocol,
    /// A queue's name, or an http(s) URL.
    pub endpoint: String,
    /// Tag topics: the tags taken (none: every message).
    pub tags: Vec<String>,
    /// Routing topics: the binding keys taken.
    pub binding_keys: Vec<String>,
    pub retry: RetryPolicy,
    pub format: BodyFormat,
    /// Key of the `x-cmq-signature` header (HMAC-SHA256 of the body).
    pub secret: Option<String>,
    /// Deliver only to public addresses: the endpoint's host must resolve
    /// to none of loopback, private, link-local or other reserved ones
    /// (for URLs that users give).
    pub public_only: bool,
}

impl SubscriptionSpec {
    /// A subscription of every message into queue `queue`.
    pub fn queue(queue: &str) -> Self {
        Self::new(Protocol::Queue, queue)
    }

    /// A subscription of every message to `url`.
    pub fn http(url: &str) -> Self {
        Self::new(Protocol::Http, url)
    }

    fn new(protocol: Protocol, endpoint: &str) -> Self {
        Self {
            protocol,
            endpoint: endpoint.to_owned(),
            tags: Vec::new(),
            binding_keys: Vec::new(),
            retry: RetryPolicy::ExponentialDecay,
            format: BodyFormat::Json,
            secret: None,
            public_only: false,
        }
    }

    pub fn tags(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn binding_keys(mut self, keys: &[&str]) -> Self {
        self.binding_keys = keys.iter().map(|t| t.to_string()).collect();
        self
    }
}

/// Entry point to the topics of one database. Clone it rather than making
/// a new one: clones share their handles on the subscribed queues.
#[derive(Clone, Debug)]
pub struct Topics {
    queues: Queues,
    /// Queues publishes wrote to, opened at most a route's TTL ago.
    handles: Arc<Mutex<HashMap<String, (Instant, Queue)>>>,
}

impl Topics {
    /// The topics of the database `queues` is on; subscriptions of protocol
    /// `queue` feed its queues.
    pub fn new(queues: Queues) -> Self {
        Self {
            queues,
            handles: Arc::default(),
        }
    }

    /// Queue `name`, from the handles opened within [`crate::ROUTE_TTL`]
    /// (so a publish reads no queue row, and changed attributes are seen
    /// within a second).
    async fn queue(&self, name: &str) -> crate::Result<Queue> {
        if let Some((at, q)) = self.handles.lock().expect("handles lock").get(name)
            && at.elapsed() < crate::ROUTE_TTL
        {
            return Ok(q.clone());
        }
        let q = self.queues.open(name).await?;
        self.handles
            .lock()
            .expect("handles lock")
            .insert(name.to_owned(), (Instant::now(), q.clone()));
        Ok(q)
    }
}
