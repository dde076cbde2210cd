//! The routes: one handler per call of the API.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::{JsonBody, OpenQueue};
use super::{Api, ApiError, ApiResult, bad_request, seconds};
use crate::{Error, NewMessage, QueueAttributes, Receipt, RewindTo};

pub(super) fn router() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, put, remove))
        .routes(routes!(send))
        .routes(routes!(receive))
        .routes(routes!(delete))
        .routes(routes!(visibility))
        .routes(routes!(rewind))
        .routes(routes!(redrive))
        .routes(routes!(purge))
}

#[utoipa::path(get, path = "/api/queues", tag = "queues",
    responses(
        (status = 200, description = "Every queue", body = QueueList),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn list(State(api): State<Api>) -> ApiResult<Json<QueueList>> {
    let mut queues = Vec::new();
    for name in api.router.list().await? {
        let a = api.router.open(&name).await?.attributes().await?;
        queues.push(view(&name, &a, None));
    }
    Ok(Json(QueueList { queues }))
}

#[utoipa::path(get, path = "/api/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "Attributes and stats", body = AttributesView),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn show(OpenQueue(q): OpenQueue) -> ApiResult<Json<AttributesView>> {
    let stats = q.stats().await?;
    Ok(Json(view(q.name(), &q.attributes().await?, Some(stats))))
}

#[utoipa::path(put, path = "/api/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = AttributesBody,
    responses(
        (status = 200, description = "Updated", body = AttributesView),
        (status = 201, description = "Created", body = AttributesView),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn put(
    State(api): State<Api>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<AttributesBody>,
) -> ApiResult<Response> {
    // Fields left out keep their current value (or the default for a new queue).
    let existing = match api.router.open(&name).await {
        Ok(q) => Some(q.attributes().await?),
        Err(Error::QueueNotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let created = existing.is_none();
    let mut a = existing.unwrap_or_else(QueueAttributes::default);
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
    api.router.put(&name, &a).await?;
    let a = api.router.open(&name).await?.attributes().await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&name, &a, None))).into_response())
}

#[utoipa::path(delete, path = "/api/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "Deleted", body = QueueDeleted),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn remove(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueDeleted>> {
    api.router.delete(&name).await?;
    Ok(Json(QueueDeleted { deleted: name }))
}

#[utoipa::path(post, path = "/api/queues/{name}/messages", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = SendBody,
    responses(
        (status = 200, description = "Sent", body = Sent),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn send(
    OpenQueue(q): OpenQueue,
    JsonBody(body): JsonBody<SendBody>,
) -> ApiResult<Json<Sent>> {
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
    let sent = q.send_batch(&messages).await?;
    Ok(Json(Sent {
        ids: sent.iter().map(|m| m.id).collect(),
        shards: sent.iter().map(|m| m.shard).collect(),
    }))
}

#[utoipa::path(post, path = "/api/queues/{name}/receive", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = ReceiveBody,
    responses(
        (status = 200, description = "Leased messages (maybe none)", body = Received),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn receive(
    OpenQueue(q): OpenQueue,
    JsonBody(body): JsonBody<ReceiveBody>,
) -> ApiResult<Json<Received>> {
    let attributes = q.attributes().await?;
    let lock = match body.lock {
        Some(s) => seconds(s, "lock")?,
        None => attributes.visibility_timeout,
    };
    let wait = match body.wait {
        Some(s) => seconds(s, "wait")?,
        None => attributes.polling_wait,
    };
    let messages = q.receive_wait(body.max.unwrap_or(1), lock, wait).await?;
    let messages = messages
        .into_iter()
        .map(|m| MessageView {
            id: m.id,
            shard: m.receipt.shard(),
            body: m.body,
            receipt: m.receipt.to_string(),
            receive_count: m.receive_count,
            enqueued_at: m.enqueued_at,
            first_received_at: m.first_received_at,
        })
        .collect();
    Ok(Json(Received { messages }))
}

#[utoipa::path(post, path = "/api/queues/{name}/delete", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = DeleteBody,
    responses(
        (status = 200, description = "Which receipts took effect", body = Deleted),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn delete(
    OpenQueue(q): OpenQueue,
    JsonBody(body): JsonBody<DeleteBody>,
) -> ApiResult<Json<Deleted>> {
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

#[utoipa::path(post, path = "/api/queues/{name}/visibility", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = VisibilityBody,
    responses(
        (status = 200, description = "Lock changed", body = Extended),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn visibility(
    OpenQueue(q): OpenQueue,
    JsonBody(body): JsonBody<VisibilityBody>,
) -> ApiResult<Json<Extended>> {
    let receipt: Receipt = body.receipt.parse()?;
    q.change_visibility(&receipt, seconds(body.lock, "lock")?)
        .await?;
    Ok(Json(Extended {
        receipt: body.receipt,
    }))
}

#[utoipa::path(post, path = "/api/queues/{name}/rewind", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = RewindBody,
    responses(
        (status = 200, description = "Messages delivered again", body = Restored),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn rewind(
    OpenQueue(q): OpenQueue,
    JsonBody(body): JsonBody<RewindBody>,
) -> ApiResult<Json<Restored>> {
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
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn redrive(OpenQueue(q): OpenQueue) -> ApiResult<Json<Moved>> {
    let moved = q.redrive().await?;
    Ok(Json(Moved { moved }))
}

#[utoipa::path(post, path = "/api/queues/{name}/purge", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses(
        (status = 200, description = "Live messages deleted", body = Purged),
        ApiError
    ),
    security(("admin_token" = []))
)]
pub(super) async fn purge(OpenQueue(q): OpenQueue) -> ApiResult<Json<Purged>> {
    let purged = q.purge().await?;
    Ok(Json(Purged { purged }))
}
