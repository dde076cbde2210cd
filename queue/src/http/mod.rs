//! The queue HTTP API (see CONTRACT.md), served by `darkroom-web` under
//! `/api/queues` and by `darkroom-queue serve`.
//!
//! Every call needs `Authorization: Bearer <admin token>`; with no token
//! configured the API answers 403 to everyone. Durations are in seconds.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

pub use auth::{AdminToken, WeakToken};

use crate::admin::Put;
use crate::rewind::RewindTo;
use crate::{Error, NewMessage, Queue, QueueAttributes, QueueKind, Queues, Receipt};

/// The OpenAPI description of this API (merged into `darkroom-web`'s).
#[derive(OpenApi)]
#[openapi(
    paths(list, show, put, remove, send, receive, delete, visibility, rewind, redrive, purge),
    modifiers(&AdminTokenScheme),
    tags((name = "queues", description = "The message queue (Tencent CMQ / SQS semantics); durations in seconds"))
)]
pub struct ApiDoc;

struct AdminTokenScheme;

impl Modify for AdminTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "admin_token",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("DARKROOM_ADMIN_TOKEN"))
                        .build(),
                ),
            );
    }
}

mod auth;

#[derive(Clone)]
struct Api {
    queues: Queues,
    admin_token: Option<Arc<AdminToken>>,
}

/// The API's routes, authenticated with `admin_token`.
pub fn router(queues: Queues, admin_token: Option<AdminToken>) -> Router {
    let api = Api {
        queues,
        admin_token: admin_token.map(Arc::new),
    };
    Router::new()
        .route("/api/queues", get(list))
        .route("/api/queues/{name}", get(show).put(put).delete(remove))
        .route("/api/queues/{name}/messages", post(send))
        .route("/api/queues/{name}/receive", post(receive))
        .route("/api/queues/{name}/delete", post(delete))
        .route("/api/queues/{name}/visibility", post(visibility))
        .route("/api/queues/{name}/rewind", post(rewind))
        .route("/api/queues/{name}/redrive", post(redrive))
        .route("/api/queues/{name}/purge", post(purge))
        .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
        // Matched routes only: a path this API does not serve must fall
        // through to the host's router (and its 404), not ask for a token.
        .route_layer(middleware::from_fn_with_state(api.clone(), authenticate))
        .with_state(api)
}

/// An API error, answered as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::QueueNotFound(_) => StatusCode::NOT_FOUND,
            Error::InvalidAttribute { .. }
            | Error::InvalidArgument { .. }
            | Error::MalformedReceipt(_) => StatusCode::BAD_REQUEST,
            Error::MessageTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::StaleReceipt => StatusCode::CONFLICT,
            Error::Database(_) => {
                tracing::error!(error = %e, "queue API request failed");
                return ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".into(),
                );
            }
        };
        ApiError(status, e.to_string())
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

type ApiResult<T> = Result<T, ApiError>;

async fn authenticate(State(api): State<Api>, request: Request, next: Next) -> Response {
    let Some(expected) = &api.admin_token else {
        return ApiError(
            StatusCode::FORBIDDEN,
            "the queue API is disabled: set DARKROOM_ADMIN_TOKEN to enable it".into(),
        )
        .into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if expected.matches(presented) {
        next.run(request).await
    } else {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <DARKROOM_ADMIN_TOKEN>)".into(),
        )
        .into_response()
    }
}

/// Parses a JSON body (an empty body counts as `{}`), naming what is wrong.
fn parse<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

fn seconds(s: f64, field: &'static str) -> ApiResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        bad_request(format!(
            "`{field}` must be a non-negative number of seconds"
        ))
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AttributesBody {
    kind: Option<QueueKind>,
    visibility_timeout: Option<f64>,
    #[serde(default, with = "double_option")]
    max_receive_count: Option<Option<u32>>,
    #[serde(default, with = "double_option")]
    dead_letter_queue: Option<Option<String>>,
    /// Seconds; null keeps messages until they are deleted.
    #[serde(default, with = "double_option")]
    retention: Option<Option<f64>>,
    rewind_window: Option<f64>,
    delay: Option<f64>,
    max_message_bytes: Option<u32>,
    polling_wait: Option<f64>,
}

/// Tells an absent field (keep) from an explicit null (clear).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Serialize, ToSchema)]
struct AttributesView {
    name: String,
    kind: QueueKind,
    visibility_timeout: f64,
    max_receive_count: Option<u32>,
    dead_letter_queue: Option<String>,
    /// Null: messages are kept until they are deleted.
    retention: Option<f64>,
    rewind_window: f64,
    delay: f64,
    max_message_bytes: u32,
    polling_wait: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<crate::Stats>,
}

#[derive(Serialize, ToSchema)]
struct QueueList {
    queues: Vec<AttributesView>,
}

#[derive(Serialize, ToSchema)]
struct Sent {
    /// Increasing within the queue, in the order of the messages sent.
    ids: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
struct Received {
    messages: Vec<MessageView>,
}

#[derive(Serialize, ToSchema)]
struct Deleted {
    deleted: Vec<String>,
    /// Receipts whose lock expired or whose message was received again.
    stale: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct Restored {
    restored: u64,
}

#[derive(Serialize, ToSchema)]
struct Moved {
    moved: u64,
}

#[derive(Serialize, ToSchema)]
struct Purged {
    purged: u64,
}

#[derive(Serialize, ToSchema)]
struct QueueDeleted {
    deleted: String,
}

#[derive(Serialize, ToSchema)]
struct Extended {
    receipt: String,
}

/// Every error: 400 bad input, 401/403 token, 404 no queue, 409 stale
/// receipt, 413 message too big.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

fn view(q: &Queue, stats: Option<crate::Stats>) -> AttributesView {
    let a = q.attributes();
    AttributesView {
        name: q.name().to_owned(),
        kind: a.kind,
        visibility_timeout: a.visibility_timeout.as_secs_f64(),
        max_receive_count: a.max_receive_count,
        dead_letter_queue: a.dead_letter_queue.clone(),
        retention: a.retention.map(|r| r.as_secs_f64()),
        rewind_window: a.rewind_window.as_secs_f64(),
        delay: a.delay.as_secs_f64(),
        max_message_bytes: a.max_message_bytes,
        polling_wait: a.polling_wait.as_secs_f64(),
        stats,
    }
}

#[utoipa::path(get, path = "/api/queues", tag = "queues",
    responses(
        (status = 200, description = "Every queue", body = QueueList),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn list(State(api): State<Api>) -> ApiResult<Json<QueueList>> {
    let queues = api.queues.list().await?;
    let queues = queues.iter().map(|q| view(q, None)).collect();
    Ok(Json(QueueList { queues }))
}

#[utoipa::path(get, path = "/api/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "Attributes and stats", body = AttributesView),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn show(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<Json<AttributesView>> {
    let q = api.queues.open(&name).await?;
    let stats = q.stats().await?;
    Ok(Json(view(&q, Some(stats))))
}

#[utoipa::path(put, path = "/api/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = AttributesBody,
    responses(
        (status = 200, description = "Updated", body = AttributesView),
        (status = 201, description = "Created", body = AttributesView),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn put(State(api): State<Api>, Path(name): Path<String>, body: Bytes) -> ApiResult<Response> {
    let body: AttributesBody = parse(&body)?;
    // Fields left out keep their current value (or the default for a new queue).
    let mut a = match api.queues.open(&name).await {
        Ok(q) => q.attributes().clone(),
        Err(Error::QueueNotFound(_)) => QueueAttributes::default(),
        Err(e) => return Err(e.into()),
    };
    if let Some(k) = body.kind {
        a.kind = k;
    }
    if let Some(s) = body.visibility_timeout {
        a.visibility_timeout = seconds(s, "visibility_timeout")?;
    }
    if let Some(n) = body.max_receive_count {
        a.max_receive_count = n;
    }
    if let Some(d) = body.dead_letter_queue {
        a.dead_letter_queue = d;
    }
    if let Some(s) = body.retention {
        a.retention = s.map(|s| seconds(s, "retention")).transpose()?;
    }
    if let Some(s) = body.rewind_window {
        a.rewind_window = seconds(s, "rewind_window")?;
    }
    if let Some(s) = body.delay {
        a.delay = seconds(s, "delay")?;
    }
    if let Some(n) = body.max_message_bytes {
        a.max_message_bytes = n;
    }
    if let Some(s) = body.polling_wait {
        a.polling_wait = seconds(s, "polling_wait")?;
    }
    let (q, put) = api.queues.put(&name, &a).await?;
    let status = match put {
        Put::Created => StatusCode::CREATED,
        Put::Updated => StatusCode::OK,
    };
    Ok((status, Json(view(&q, None))).into_response())
}

#[utoipa::path(delete, path = "/api/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "Deleted", body = QueueDeleted),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn remove(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<Json<QueueDeleted>> {
    api.queues.delete(&name).await?;
    Ok(Json(QueueDeleted { deleted: name }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SendBody {
    messages: Vec<SendMessage>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    body: String,
    delay: Option<f64>,
    group: Option<String>,
}

#[utoipa::path(post, path = "/api/queues/{name}/messages", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = SendBody,
    responses(
        (status = 200, description = "Sent", body = Sent),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 413, description = "A message is over max_message_bytes", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn send(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Sent>> {
    let q = api.queues.open(&name).await?;
    let body: SendBody = parse(&body)?;
    let messages = body
        .messages
        .into_iter()
        .map(|m| {
            Ok(NewMessage {
                body: m.body,
                delay: m.delay.map(|d| seconds(d, "delay")).transpose()?,
                group: m.group,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let ids = q.send_batch(&messages).await?;
    Ok(Json(Sent { ids }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReceiveBody {
    max: Option<usize>,
    lock: Option<f64>,
    wait: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct MessageView {
    id: i64,
    body: String,
    receipt: String,
    receive_count: i32,
    enqueued_at: DateTime<Utc>,
    first_received_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/api/queues/{name}/receive", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = ReceiveBody,
    responses(
        (status = 200, description = "Leased messages (maybe none)", body = Received),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn receive(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Received>> {
    let q = api.queues.open(&name).await?;
    let body: ReceiveBody = parse(&body)?;
    let lock = match body.lock {
        Some(s) => seconds(s, "lock")?,
        None => q.attributes().visibility_timeout,
    };
    let wait = match body.wait {
        Some(s) => seconds(s, "wait")?,
        None => q.attributes().polling_wait,
    };
    let messages = q.receive_wait(body.max.unwrap_or(1), lock, wait).await?;
    let messages = messages
        .into_iter()
        .map(|m| MessageView {
            id: m.id,
            body: m.body,
            receipt: m.receipt.to_string(),
            receive_count: m.receive_count,
            enqueued_at: m.enqueued_at,
            first_received_at: m.first_received_at,
        })
        .collect();
    Ok(Json(Received { messages }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    receipts: Vec<String>,
}

#[utoipa::path(post, path = "/api/queues/{name}/delete", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = DeleteBody,
    responses(
        (status = 200, description = "Which receipts took effect", body = Deleted),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn delete(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Deleted>> {
    let q = api.queues.open(&name).await?;
    let body: DeleteBody = parse(&body)?;
    let receipts = body
        .receipts
        .iter()
        .map(|r| r.parse::<Receipt>())
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = q.delete_batch(&receipts).await?;
    let text = |v: Vec<Receipt>| v.into_iter().map(|r| r.to_string()).collect::<Vec<_>>();
    Ok(Json(Deleted {
        deleted: text(outcome.deleted),
        stale: text(outcome.stale),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VisibilityBody {
    receipt: String,
    lock: f64,
}

#[utoipa::path(post, path = "/api/queues/{name}/visibility", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = VisibilityBody,
    responses(
        (status = 200, description = "Lock changed", body = Extended),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 409, description = "Stale receipt", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn visibility(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Extended>> {
    let q = api.queues.open(&name).await?;
    let body: VisibilityBody = parse(&body)?;
    let receipt: Receipt = body.receipt.parse()?;
    q.change_visibility(&receipt, seconds(body.lock, "lock")?)
        .await?;
    Ok(Json(Extended {
        receipt: body.receipt,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RewindBody {
    to_time: Option<DateTime<Utc>>,
    to_id: Option<i64>,
}

#[utoipa::path(post, path = "/api/queues/{name}/rewind", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = RewindBody,
    responses(
        (status = 200, description = "Messages delivered again", body = Restored),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn rewind(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Restored>> {
    let q = api.queues.open(&name).await?;
    let body: RewindBody = parse(&body)?;
    let to = match (body.to_time, body.to_id) {
        (Some(t), None) => RewindTo::Time(t),
        (None, Some(id)) => RewindTo::Id(id),
        _ => {
            return Err(bad_request(
                "give exactly one of `to_time` (RFC 3339) or `to_id`",
            ));
        }
    };
    let restored = q.rewind(to).await?;
    Ok(Json(Restored { restored }))
}

#[utoipa::path(post, path = "/api/queues/{name}/redrive", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "Dead letters moved back", body = Moved),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn redrive(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<Json<Moved>> {
    let moved = api.queues.open(&name).await?.redrive().await?;
    Ok(Json(Moved { moved }))
}

#[utoipa::path(post, path = "/api/queues/{name}/purge", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "Live messages deleted", body = Purged),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)", body = ErrorBody),
        (status = 404, description = "No such queue", body = ErrorBody)
    ),
    security(("admin_token" = []))
)]
async fn purge(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<Json<Purged>> {
    let purged = api.queues.open(&name).await?.purge().await?;
    Ok(Json(Purged { purged }))
}
