//! The topic routes: `/api/topics/...`, beside the queues'.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::JsonBody;
use super::{Api, ApiError, ApiResult, bad_request, seconds};
use crate::{
    BodyFormat, Protocol, Publication, RetryPolicy, SubscriptionInfo, SubscriptionSpec,
    TopicFilter, TopicInfo, TopicSettings, Topics,
};

pub(super) fn router() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(put, remove))
        .routes(routes!(publish))
        .routes(routes!(subscriptions))
        .routes(routes!(subscribe, unsubscribe))
}

fn topics(api: &Api) -> Topics {
    Topics::new(api.router.control().clone())
}

#[derive(Serialize, ToSchema)]
pub(super) struct TopicList {
    topics: Vec<TopicInfo>,
}

/// A topic's settings; fields left out take their defaults.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TopicBody {
    /// `tag` (default) or `routing`.
    filter: Option<TopicFilter>,
    /// Seconds an HTTP delivery is retried (default 86400).
    message_lifetime: Option<f64>,
    /// Largest body (default 1 MiB).
    max_message_bytes: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishBody {
    messages: Vec<Publication>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Published {
    ids: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SubscriptionList {
    subscriptions: Vec<SubscriptionInfo>,
}

/// A subscription.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscriptionBody {
    /// `queue` or `http`.
    protocol: Protocol,
    /// A queue's name, or an http(s) URL.
    endpoint: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    binding_keys: Vec<String>,
    /// `EXPONENTIAL_DECAY_RETRY` (default) or `BACKOFF_RETRY`.
    retry: Option<String>,
    /// BACKOFF_RETRY's interval in seconds (default 10).
    retry_interval: Option<f64>,
    /// `JSON` (default) or `SIMPLIFIED`.
    format: Option<BodyFormat>,
    /// Key of the `x-cmq-signature` HMAC-SHA256 header.
    secret: Option<String>,
    /// Deliver only to public addresses (default false).
    #[serde(default)]
    public_only: bool,
}

#[utoipa::path(get, path = "/api/topics", tag = "topics",
    responses((status = 200, description = "Every topic", body = TopicList), ApiError),
    security(("admin_token" = []))
)]
pub(super) async fn list(State(api): State<Api>) -> ApiResult<Json<TopicList>> {
    Ok(Json(TopicList {
        topics: topics(&api).topics().await?,
    }))
}

#[utoipa::path(put, path = "/api/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    request_body = TopicBody,
    responses((status = 200, description = "Created or changed"), ApiError),
    security(("admin_token" = []))
)]
pub(super) async fn put(
    State(api): State<Api>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<TopicBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut settings = TopicSettings::default();
    if let Some(f) = body.filter {
        settings.filter = f;
    }
    if let Some(s) = body.message_lifetime {
        settings.message_lifetime = seconds(s, "message_lifetime")?;
    }
    if let Some(b) = body.max_message_bytes {
        settings.max_message_bytes = b;
    }
    topics(&api).put_topic(&name, &settings).await?;
    Ok(Json(serde_json::json!({ "topic": name })))
}

#[utoipa::path(delete, path = "/api/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    responses((status = 200, description = "Deleted with its subscriptions"), ApiError),
    security(("admin_token" = []))
)]
pub(super) async fn remove(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    topics(&api).delete_topic(&name).await?;
    Ok(Json(serde_json::json!({ "deleted": name })))
}

#[utoipa::path(post, path = "/api/topics/{name}/publish", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    request_body = PublishBody,
    responses((status = 200, description = "Published", body = Published), ApiError),
    security(("admin_token" = []))
)]
pub(super) async fn publish(
    State(api): State<Api>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PublishBody>,
) -> ApiResult<Json<Published>> {
    let ids = topics(&api).publish(&name, &body.messages).await?;
    Ok(Json(Published { ids }))
}

#[utoipa::path(get, path = "/api/topics/{name}/subscriptions", tag = "topics",
    params(("name" = String, Path, description = "Topic name")),
    responses((status = 200, description = "Subscriptions and their backlog", body = SubscriptionList), ApiError),
    security(("admin_token" = []))
)]
pub(super) async fn subscriptions(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<Json<SubscriptionList>> {
    Ok(Json(SubscriptionList {
        subscriptions: topics(&api).subscriptions(&name).await?,
    }))
}

#[utoipa::path(put, path = "/api/topics/{name}/subscriptions/{subscription}", tag = "topics",
    params(
        ("name" = String, Path, description = "Topic name"),
        ("subscription" = String, Path, description = "Subscription name")
    ),
    request_body = SubscriptionBody,
    responses((status = 200, description = "Subscribed"), ApiError),
    security(("admin_token" = []))
)]
pub(super) async fn subscribe(
    State(api): State<Api>,
    Path((name, subscription)): Path<(String, String)>,
    JsonBody(body): JsonBody<SubscriptionBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let retry = match body.retry.as_deref() {
        None | Some("EXPONENTIAL_DECAY_RETRY") => RetryPolicy::ExponentialDecay,
        Some("BACKOFF_RETRY") => RetryPolicy::Backoff {
            interval: match body.retry_interval {
                Some(s) => seconds(s, "retry_interval")?,
                None => Duration::from_secs(10),
            },
        },
        Some(other) => {
            return Err(bad_request(format!(
                "`retry` must be BACKOFF_RETRY or EXPONENTIAL_DECAY_RETRY, not `{other}`"
            )));
        }
    };
    let spec = SubscriptionSpec {
        protocol: body.protocol,
        endpoint: body.endpoint,
        tags: body.tags,
        binding_keys: body.binding_keys,
        retry,
        format: body.format.unwrap_or_default(),
        secret: body.secret,
        public_only: body.public_only,
    };
    topics(&api).subscribe(&name, &subscription, &spec).await?;
    Ok(Json(serde_json::json!({ "subscribed": subscription })))
}

#[utoipa::path(delete, path = "/api/topics/{name}/subscriptions/{subscription}", tag = "topics",
    params(
        ("name" = String, Path, description = "Topic name"),
        ("subscription" = String, Path, description = "Subscription name")
    ),
    responses((status = 200, description = "Unsubscribed"), ApiError),
    security(("admin_token" = []))
)]
pub(super) async fn unsubscribe(
    State(api): State<Api>,
    Path((name, subscription)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    topics(&api).unsubscribe(&name, &subscription).await?;
    Ok(Json(serde_json::json!({ "unsubscribed": subscription })))
}
