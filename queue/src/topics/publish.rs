//! Publishing: one transaction writes each message into every subscribed
//! queue and an HTTP delivery for every subscribed endpoint.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::filter::{MAX_TAGS, any_key_matches, tags_match};
use super::{DELIVERY_QUEUE, Protocol, TopicFilter, Topics};
use crate::attributes::check_batch;
use crate::{Error, NewMessage, Queue, Result};

/// A message to publish.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
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
    /// Tries made and failed (deliveries written before this field was
    /// counted their tries by receives).
    #[serde(rename = "t", default)]
    pub(crate) tries: u32,
    /// Its place among its subscription's deliveries, from 1 (0: written
    /// before they were numbered, and never dropped for newer ones).
    #[serde(rename = "n", default)]
    pub(crate) number: i64,
}

/// A subscription a publish may feed.
struct Subscriber {
    id: i32,
    protocol: String,
    endpoint: String,
    tags: Vec<String>,
    binding_keys: Vec<String>,
}

/// A topic as one publish found it: how it filters, the ids drawn for the
/// messages, and the subscriptions that may take some of them.
struct Fanout {
    filter: TopicFilter,
    max_bytes: usize,
    ids: Vec<i64>,
    subscribers: Vec<Subscriber>,
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
        check_tags(messages)?;
        let fanout = fanout(tx, topic, messages).await?;
        check_sizes(messages, fanout.max_bytes)?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut woken = Vec::new();
        // HTTP subscriptions and the messages each takes.
        let mut http = Vec::new();
        for s in &fanout.subscribers {
            let taken = taken_by(s, &fanout, messages);
            if taken.is_empty() {
                continue;
            }
            match Protocol::parse(&s.protocol) {
                Protocol::Queue => woken.extend(self.feed_queue(tx, topic, s, &taken).await?),
                Protocol::Http => http.push((s.id, taken)),
            }
        }
        if !http.is_empty() {
            woken.push(self.queue_deliveries(tx, &http, now).await?);
        }
        for q in woken {
            q.notify_in(tx).await?;
        }
        Ok(fanout.ids)
    }

    /// Sends `taken` into `s`'s queue; returns the queue to wake, or none
    /// when it no longer exists.
    async fn feed_queue(
        &self,
        tx: &mut sqlx::PgConnection,
        topic: &str,
        s: &Subscriber,
        taken: &[(i64, &Publication)],
    ) -> Result<Option<Queue>> {
        let queue = match self.queue(&s.endpoint).await {
            Ok(q) => q,
            // Deleted since it subscribed: nothing to feed, and no reason to
            // refuse the others theirs.
            Err(Error::QueueNotFound(_)) => {
                tracing::warn!(topic, queue = s.endpoint, "subscribed queue is gone");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let batch: Vec<NewMessage> = taken
            .iter()
            .map(|(_, m)| NewMessage::new(m.body.clone()))
            .collect();
        queue.send_batch_in(tx, &batch).await?;
        Ok(Some(queue))
    }

    /// Sends the deliveries of `http`'s messages into [`DELIVERY_QUEUE`];
    /// returns that queue, to wake.
    async fn queue_deliveries(
        &self,
        tx: &mut sqlx::PgConnection,
        http: &[(i32, Vec<(i64, &Publication)>)],
        now: i64,
    ) -> Result<Queue> {
        let deliveries = self.number_deliveries(tx, http, now).await?;
        let queue = self.queue(DELIVERY_QUEUE).await?;
        for chunk in deliveries.chunks(crate::MAX_BATCH) {
            queue.send_batch_in(tx, chunk).await?;
        }
        Ok(queue)
    }

    /// The deliveries of `http`'s messages to their subscriptions, each
    /// numbered in its subscription's order of publishing (which the
    /// pushers' cap on pending deliveries goes by) and counted as pending.
    async fn number_deliveries(
        &self,
        tx: &mut sqlx::PgConnection,
        http: &[(i32, Vec<(i64, &Publication)>)],
        now: i64,
    ) -> Result<Vec<NewMessage>> {
        let ids: Vec<i32> = http.iter().map(|(id, _)| *id).collect();
        let counts: Vec<i64> = http.iter().map(|(_, t)| t.len() as i64).collect();
        let numbered: Vec<(i32, i64)> =
            sqlx::query_as(include_str!("../../sql/topic_number_deliveries.sql"))
                .bind(&ids)
                .bind(&counts)
                .fetch_all(&mut *tx)
                .await?;
        let before: HashMap<i32, i64> = numbered.into_iter().collect();
        let mut deliveries = Vec::new();
        for (subscription, taken) in http {
            let Some(first) = before.get(subscription) else {
                // Unsubscribed while this publish read it.
                continue;
            };
            for (n, (id, m)) in (first + 1..).zip(taken) {
                let d = Delivery {
                    subscription: *subscription,
                    message_id: *id,
                    body: m.body.clone(),
                    tags: m.tags.clone(),
                    routing_key: m.routing_key.clone(),
                    published_at: now,
                    tries: 0,
                    number: n,
                };
                let body = serde_json::to_string(&d).expect("a delivery serializes");
                deliveries.push(NewMessage::new(body));
            }
        }
        Ok(deliveries)
    }
}

fn check_tags(messages: &[Publication]) -> Result<()> {
    if messages.iter().any(|m| m.tags.len() > MAX_TAGS) {
        return Err(Error::InvalidArgument {
            field: "tags",
            message: format!("a message carries at most {MAX_TAGS}"),
        });
    }
    Ok(())
}

fn check_sizes(messages: &[Publication], limit: usize) -> Result<()> {
    if let Some(m) = messages.iter().find(|m| m.body.len() > limit) {
        return Err(Error::MessageTooLarge {
            size: m.body.len(),
            limit,
        });
    }
    Ok(())
}

/// Topic `topic` with ids drawn for `messages` and the subscriptions that
/// may take them.
async fn fanout(
    tx: &mut sqlx::PgConnection,
    topic: &str,
    messages: &[Publication],
) -> Result<Fanout> {
    let all_tags: Vec<String> = messages.iter().flat_map(|m| m.tags.clone()).collect();
    let rows = sqlx::query_file!(
        "sql/topic_subscribers.sql",
        topic,
        messages.len() as i32,
        &all_tags,
    )
    .fetch_all(&mut *tx)
    .await?;
    let first = rows
        .first()
        .ok_or_else(|| Error::TopicNotFound(topic.to_owned()))?;
    let (filter, max_bytes, ids) = (
        TopicFilter::parse(&first.filter),
        first.max_bytes as usize,
        first.ids.clone(),
    );
    let subscribers = rows
        .into_iter()
        .filter_map(|r| {
            Some(Subscriber {
                id: r.sub_id?,
                protocol: r.protocol?,
                endpoint: r.endpoint?,
                tags: r.tags.unwrap_or_default(),
                binding_keys: r.binding_keys.unwrap_or_default(),
            })
        })
        .collect();
    Ok(Fanout {
        filter,
        max_bytes,
        ids,
        subscribers,
    })
}

/// The messages (with their ids) of this publish that `s` takes.
fn taken_by<'a>(
    s: &Subscriber,
    fanout: &Fanout,
    messages: &'a [Publication],
) -> Vec<(i64, &'a Publication)> {
    fanout
        .ids
        .iter()
        .copied()
        .zip(messages)
        .filter(|(_, m)| match fanout.filter {
            TopicFilter::Tag => tags_match(&s.tags, &m.tags),
            TopicFilter::Routing => any_key_matches(&s.binding_keys, m.routing_key.as_deref()),
        })
        .collect()
}
