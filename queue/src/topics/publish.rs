//! Publishing: one transaction writes each message into every subscribed
//! queue and an HTTP delivery for every subscribed endpoint.

use serde::{Deserialize, Serialize};

use super::admin::{parse_filter, parse_protocol};
use super::filter::{MAX_TAGS, any_key_matches, tags_match};
use super::{DELIVERY_QUEUE, Protocol, TopicFilter, Topics};
use crate::attributes::check_batch;
use crate::{Error, NewMessage, Result};

/// A message to publish.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Publication {
    pub body: String,
    /// Tag topics: up to 5 tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Routing topics: the routing key (words separated by dots).
    #[serde(default)]
    pub routing_key: Option<String>,
}

impl Publication {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Default::default()
        }
    }

    pub fn tagged(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn routed(mut self, key: &str) -> Self {
        self.routing_key = Some(key.to_owned());
        self
    }
}

/// What waits in the delivery queue for a pusher.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Delivery {
    /// The subscription's id.
    #[serde(rename = "s")]
    pub(crate) subscription: i32,
    #[serde(rename = "m")]
    pub(crate) message_id: i64,
    #[serde(rename = "b")]
    pub(crate) body: String,
    #[serde(rename = "g", default)]
    pub(crate) tags: Vec<String>,
    #[serde(rename = "k", default)]
    pub(crate) routing_key: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(rename = "p")]
    pub(crate) published_at: i64,
}

impl Topics {
    /// Publishes up to 1000 messages to topic `topic`; returns their ids.
    /// Every subscribed queue gets its copies in this one transaction, or
    /// none does.
    pub async fn publish(&self, topic: &str, messages: &[Publication]) -> Result<Vec<i64>> {
        let mut tx = self.queues.pool().begin().await?;
        let ids = self.publish_in(&mut tx, topic, messages).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Like [`Topics::publish`], in the caller's transaction: the copies and
    /// deliveries commit with the caller's own rows, and receivers are woken
    /// when it commits.
    pub async fn publish_in(
        &self,
        tx: &mut sqlx::PgConnection,
        topic: &str,
        messages: &[Publication],
    ) -> Result<Vec<i64>> {
        check_batch("messages", messages.len())?;
        let t = sqlx::query!(
            "select id, filter, max_message_bytes from queue_topics where name = $1",
            topic
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::TopicNotFound(topic.to_owned()))?;
        for m in messages {
            if m.body.len() > t.max_message_bytes as usize {
                return Err(Error::MessageTooLarge {
                    size: m.body.len(),
                    limit: t.max_message_bytes as usize,
                });
            }
            if m.tags.len() > MAX_TAGS {
                return Err(Error::InvalidArgument {
                    field: "tags",
                    message: format!("a message carries at most {MAX_TAGS}"),
                });
            }
        }
        let filter = parse_filter(&t.filter);
        // A tag topic reads only the subscriptions that can match (those
        // without tags and those sharing one), not all of a topic's.
        let all_tags: Vec<String> = messages.iter().flat_map(|m| m.tags.clone()).collect();
        let subscriptions = sqlx::query!(
            r#"
            select id, protocol, endpoint, tags, binding_keys from queue_subscriptions
            where topic_id = $1
              and ($2 = 'routing' or cardinality(tags) = 0 or tags && $3)
            order by id
            "#,
            t.id,
            t.filter,
            &all_tags,
        )
        .fetch_all(&mut *tx)
        .await?;
        let ids = sqlx::query_scalar!(
            r#"select nextval('queue_topic_message_ids') as "id!" from generate_series(1, $1)"#,
            messages.len() as i32
        )
        .fetch_all(&mut *tx)
        .await?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut woken = Vec::new();
        let mut deliveries = Vec::new();
        for s in &subscriptions {
            let taken: Vec<(i64, &Publication)> = ids
                .iter()
                .copied()
                .zip(messages)
                .filter(|(_, m)| match filter {
                    TopicFilter::Tag => tags_match(&s.tags, &m.tags),
                    TopicFilter::Routing => {
                        any_key_matches(&s.binding_keys, m.routing_key.as_deref())
                    }
                })
                .collect();
            if taken.is_empty() {
                continue;
            }
            match parse_protocol(&s.protocol) {
                Protocol::Queue => {
                    let queue = self.queues.open(&s.endpoint).await?;
                    let batch: Vec<NewMessage> = taken
                        .iter()
                        .map(|(_, m)| NewMessage::new(m.body.clone()))
                        .collect();
                    queue.send_batch_in(tx, &batch).await?;
                    woken.push(queue);
                }
                Protocol::Http => {
                    for (id, m) in &taken {
                        let d = Delivery {
                            subscription: s.id,
                            message_id: *id,
                            body: m.body.clone(),
                            tags: m.tags.clone(),
                            routing_key: m.routing_key.clone(),
                            published_at: now,
                        };
                        let body = serde_json::to_string(&d).expect("a delivery serializes");
                        deliveries.push(NewMessage::new(body));
                    }
                    sqlx::query!(
                        "update queue_subscriptions set pending = pending + $2 where id = $1",
                        s.id,
                        taken.len() as i64
                    )
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        if !deliveries.is_empty() {
            let queue = self.queues.open(DELIVERY_QUEUE).await?;
            for chunk in deliveries.chunks(crate::MAX_BATCH) {
                queue.send_batch_in(tx, chunk).await?;
            }
            woken.push(queue);
        }
        for q in woken {
            q.notify_in(tx).await?;
        }
        Ok(ids)
    }
}
