//! One delivery's POST, as CMQ makes it: the body in the subscription's
//! format, the `x-cmq-*` headers, and the signatures that let an endpoint
//! tell a pusher's POST from anyone else's.

use super::Pusher;
use super::subscription::Subscription;
use crate::topics::BodyFormat;
use crate::topics::address::public_host;
use crate::topics::publish::Delivery;
use crate::topics::signature::{signature, timestamped};

impl Pusher {
    /// The client to POST to `s`'s endpoint with, or none when it must keep
    /// to public addresses and its host is not one.
    pub(super) fn client(&self, s: &Subscription) -> Option<&reqwest::Client> {
        if !s.public_only {
            return Some(&self.clients.any);
        }
        if !public_host(&s.endpoint) {
            return None;
        }
        Some(&self.clients.public)
    }

    /// POSTs `d` to `s`'s endpoint as try `attempt`; whether it took it.
    pub(super) async fn post(
        &self,
        client: &reqwest::Client,
        d: &Delivery,
        s: &Subscription,
        attempt: u32,
    ) -> bool {
        let body = body(d, s);
        let mut request = client
            .post(&s.endpoint)
            .timeout(self.settings.timeout)
            .header("content-type", "application/json")
            .header("x-cmq-message-id", d.message_id.to_string())
            .header("x-cmq-message-tag", d.tags.join(","))
            .header("x-cmq-topic", &s.topic)
            .header("x-cmq-subscription", &s.name)
            .header("x-cmq-attempt", attempt.to_string());
        if let Some(key) = &d.routing_key {
            request = request.header("x-cmq-routing-key", key);
        }
        if let Some(secret) = &s.secret {
            let now = chrono::Utc::now().timestamp();
            request = request
                .header("x-cmq-signature", signature(secret, &body))
                .header("darkroom-signature", timestamped(secret, now, &body));
        }
        match request.body(body).send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::debug!(status = %r.status(), endpoint = s.endpoint, "delivery refused");
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, endpoint = s.endpoint, "delivery failed");
                false
            }
        }
    }
}

/// What is POSTed for `d`: its body alone, or CMQ's JSON envelope.
fn body(d: &Delivery, s: &Subscription) -> String {
    match BodyFormat::parse(&s.format) {
        BodyFormat::Simplified => d.body.clone(),
        BodyFormat::Json => serde_json::json!({
            "topicName": s.topic,
            "subscriptionName": s.name,
            "msgId": d.message_id.to_string(),
            "msgBody": d.body,
            "msgTag": d.tags,
            "routingKey": d.routing_key,
            "publishTime": d.published_at,
        })
        .to_string(),
    }
}
