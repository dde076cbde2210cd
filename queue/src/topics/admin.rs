//! Creating, listing and deleting topics; subscribing and unsubscribing.

use std::time::Duration;

use serde::Serialize;

use super::filter::MAX_TAGS;
use super::{
    BodyFormat, DELIVERY_QUEUE, Protocol, SubscriptionSpec, TopicFilter, TopicSettings, Topics,
};
use crate::attributes::{from_millis, millis};
use crate::{Error, QueueAttributes, Result};

/// A topic as listed.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TopicInfo {
    pub name: String,
    pub filter: TopicFilter,
    /// Seconds.
    pub message_lifetime: f64,
    pub max_message_bytes: u32,
    pub subscriptions: i64,
}

/// A subscription as listed, with its backlog: messages waiting in its
/// queue, or HTTP deliveries not yet made.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionInfo {
    pub name: String,
    pub protocol: Protocol,
    pub endpoint: String,
    pub tags: Vec<String>,
    pub binding_keys: Vec<String>,
    pub retry: String,
    pub format: BodyFormat,
    pub backlog: i64,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::InvalidArgument {
        field,
        message: message.into(),
    }
}

impl Topics {
    /// Creates topic `name`, or changes its settings.
    pub async fn put_topic(&self, name: &str, settings: &TopicSettings) -> Result<()> {
        self.write_topic(name, settings, true).await
    }

    /// Creates topic `name` with `settings` unless it exists; never changes
    /// an existing topic (as [`crate::Queues::ensure`]). Used by services to
    /// declare what they need.
    pub async fn ensure_topic(&self, name: &str, settings: &TopicSettings) -> Result<()> {
        self.write_topic(name, settings, false).await
    }

    /// Creates the topic, or, with `replace`, changes an existing one.
    async fn write_topic(&self, name: &str, settings: &TopicSettings, replace: bool) -> Result<()> {
        crate::admin::check_name("name", name, crate::admin::NAME_MAX)?;
        if settings.message_lifetime < Duration::from_secs(1) {
            return Err(invalid("message_lifetime", "must be at least 1 s"));
        }
        if settings.max_message_bytes == 0 || settings.max_message_bytes > 64 * 1024 * 1024 {
            return Err(invalid(
                "max_message_bytes",
                "must be between 1 byte and 64 MiB",
            ));
        }
        sqlx::query_file!(
            "sql/put_topic.sql",
            name,
            settings.filter.as_str(),
            millis(settings.message_lifetime),
            settings.max_message_bytes as i32,
            replace,
        )
        .execute(self.queues.pool())
        .await?;
        // Deliveries are kept until a pusher delivers or drops them.
        let deliveries = QueueAttributes {
            retention: None,
            ..QueueAttributes::default()
        };
        self.queues.ensure(DELIVERY_QUEUE, &deliveries).await?;
        Ok(())
    }

    /// Every topic, with how many subscriptions it has.
    pub async fn topics(&self) -> Result<Vec<TopicInfo>> {
        let rows = sqlx::query_file!("sql/list_topics.sql")
            .fetch_all(self.queues.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| TopicInfo {
                name: r.name,
                filter: TopicFilter::parse(&r.filter),
                message_lifetime: from_millis(r.message_lifetime_ms).as_secs_f64(),
                max_message_bytes: r.max_message_bytes as u32,
                subscriptions: r.subscriptions,
            })
            .collect())
    }

    /// Deletes topic `name` and its subscriptions; deliveries already
    /// waiting are dropped by the pushers.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let deleted = sqlx::query!("delete from queue_topics where name = $1", name)
            .execute(self.queues.pool())
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(Error::TopicNotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Subscribes `name` to topic `topic`, or changes that subscription.
    pub async fn subscribe(&self, topic: &str, name: &str, spec: &SubscriptionSpec) -> Result<()> {
        let mut conn = self.queues.pool().acquire().await?;
        self.subscribe_in(&mut conn, topic, name, spec).await
    }

    /// Like [`Topics::subscribe`], on the caller's connection, so the
    /// subscription commits with the caller's own rows.
    pub async fn subscribe_in(
        &self,
        conn: &mut sqlx::PgConnection,
        topic: &str,
        name: &str,
        spec: &SubscriptionSpec,
    ) -> Result<()> {
        crate::admin::check_name("subscription", name, crate::admin::NAME_MAX)?;
        if spec.tags.len() > MAX_TAGS {
            return Err(invalid("tags", format!("at most {MAX_TAGS}")));
        }
        let (retry, interval) = spec.retry.stored();
        match spec.protocol {
            Protocol::Queue => {
                // The queue must exist here: the publish writes into it in
                // its own transaction.
                self.queues.open(&spec.endpoint).await?;
            }
            Protocol::Http => {
                if !url_ok(&spec.endpoint) {
                    return Err(invalid("endpoint", "must be an http:// or https:// URL"));
                }
                if spec.public_only && !super::address::public_host(&spec.endpoint) {
                    return Err(invalid("endpoint", "must be a public address"));
                }
            }
        }
        let done = sqlx::query_file!(
            "sql/subscribe.sql",
            topic,
            name,
            spec.protocol.as_str(),
            spec.endpoint,
            &spec.tags,
            &spec.binding_keys,
            retry,
            interval,
            spec.format.as_str(),
            spec.secret,
            spec.public_only,
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(Error::TopicNotFound(topic.to_owned()));
        }
        Ok(())
    }

    /// Removes subscription `name` of topic `topic`.
    pub async fn unsubscribe(&self, topic: &str, name: &str) -> Result<()> {
        let done = sqlx::query_file!("sql/unsubscribe.sql", topic, name)
            .execute(self.queues.pool())
            .await?
            .rows_affected();
        if done == 0 {
            return Err(Error::SubscriptionNotFound(format!("{topic}/{name}")));
        }
        Ok(())
    }

    /// Removes those of `names` that are subscriptions of `topic`, on the
    /// caller's connection; returns how many.
    pub async fn unsubscribe_in(
        &self,
        conn: &mut sqlx::PgConnection,
        topic: &str,
        names: &[String],
    ) -> Result<u64> {
        Ok(sqlx::query_file!("sql/unsubscribe_many.sql", topic, names)
            .execute(&mut *conn)
            .await?
            .rows_affected())
    }

    /// Topic `topic`'s subscriptions with their backlog.
    pub async fn subscriptions(&self, topic: &str) -> Result<Vec<SubscriptionInfo>> {
        let rows = sqlx::query_file!("sql/topic_subscriptions.sql", topic)
            .fetch_all(self.queues.pool())
            .await?;
        if rows.is_empty() {
            return Err(Error::TopicNotFound(topic.to_owned()));
        }
        let rows: Vec<_> = rows
            .into_iter()
            .filter_map(|r| {
                Some(Subscribed {
                    name: r.name?,
                    protocol: r.protocol?,
                    endpoint: r.endpoint?,
                    tags: r.tags?,
                    binding_keys: r.binding_keys?,
                    retry: r.retry?,
                    retry_interval_ms: r.retry_interval_ms?,
                    format: r.format?,
                    pending: r.pending?,
                })
            })
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let protocol = Protocol::parse(&r.protocol);
            let backlog = match protocol {
                Protocol::Http => r.pending,
                Protocol::Queue => match self.queues.open(&r.endpoint).await {
                    Ok(q) => {
                        let s = q.stats().await?;
                        s.visible + s.in_flight + s.delayed
                    }
                    Err(Error::QueueNotFound(_)) => 0,
                    Err(e) => return Err(e),
                },
            };
            out.push(SubscriptionInfo {
                name: r.name,
                protocol,
                endpoint: r.endpoint,
                tags: r.tags,
                binding_keys: r.binding_keys,
                retry: match r.retry.as_str() {
                    "BACKOFF_RETRY" => format!(
                        "BACKOFF_RETRY every {} s",
                        from_millis(r.retry_interval_ms).as_secs_f64()
                    ),
                    other => other.to_owned(),
                },
                format: BodyFormat::parse(&r.format),
                backlog,
            });
        }
        Ok(out)
    }
}

/// A subscription as stored.
struct Subscribed {
    name: String,
    protocol: String,
    endpoint: String,
    tags: Vec<String>,
    binding_keys: Vec<String>,
    retry: String,
    retry_interval_ms: i64,
    format: String,
    pending: i64,
}

fn url_ok(endpoint: &str) -> bool {
    url::Url::parse(endpoint).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}
