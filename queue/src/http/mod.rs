//! The queue HTTP API (see CONTRACT.md), served by `darkroom-web` under
//! `/api/queues` on its admin listener and by `darkroom-queue serve`.
//!
//! Every call needs `Authorization: Bearer <admin token>`; with no token
//! configured the API answers 403 to everyone. Durations are in seconds.
//!
//! - `routes`: one handler per call.
//! - `dto`: request bodies and views.
//! - `auth`: the admin token and the middleware that checks it.
//! - `extract`: the opened queue of the path, and JSON bodies.

mod auth;
mod dto;
mod extract;
mod routes;
mod topics;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::{IntoResponses, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use auth::{AdminToken, WeakToken};
pub use dto::ErrorBody;

use auth::Scheme;

use crate::Error;

/// The OpenAPI description of this API (merged into `darkroom-web`'s),
/// read off the routes themselves so that the two cannot disagree.
pub struct ApiDoc;

impl OpenApi for ApiDoc {
    fn openapi() -> utoipa::openapi::OpenApi {
        routes().into_openapi()
    }
}

/// What the description says beyond its paths.
#[derive(OpenApi)]
#[openapi(
    modifiers(&Scheme),
    tags(
        (name = "queues", description = "The message queue (Tencent CMQ / SQS semantics); durations in seconds"),
        (name = "topics", description = "Publish/subscribe (CMQ topics): tag or routing-key filters, into queues or to HTTP endpoints")
    )
)]
struct Base;

#[derive(Clone)]
struct Api {
    router: crate::Router,
    admin_token: Option<Arc<AdminToken>>,
}

/// The API's routes over the queues `queues` routes to, authenticated with
/// `admin_token`. Given the process's router, so that the API shares its
/// connections to the shards and its cache of placements.
pub fn router(queues: crate::Router, admin_token: Option<AdminToken>) -> Router {
    let api = Api {
        router: queues,
        admin_token: admin_token.map(Arc::new),
    };
    let (routes, _) = routes().split_for_parts();
    routes
        .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
        // Matched routes only: a path this API does not serve must fall
        // through to the host's router (and its 404), not ask for a token.
        .route_layer(middleware::from_fn_with_state(
            api.clone(),
            auth::authenticate,
        ))
        .with_state(api)
}

/// Every route of the API, with its description.
fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(Base::openapi())
        .merge(routes::router())
        .merge(topics::router())
}

/// An API error, answered as `{"error": "..."}` with its status; the
/// OpenAPI description lists these on every route.
#[derive(Debug, IntoResponses)]
pub enum ApiError {
    #[response(status = 400, description = "Bad input; the message names the field")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "Missing or wrong admin token")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "Queue API disabled (no DARKROOM_ADMIN_TOKEN)"
    )]
    Disabled(ErrorBody),
    #[response(status = 404, description = "No such queue")]
    NotFound(ErrorBody),
    #[response(
        status = 409,
        description = "Stale receipt: its lock expired or the message was received again"
    )]
    Stale(ErrorBody),
    #[response(status = 413, description = "A message is over max_message_bytes")]
    TooLarge(ErrorBody),
    #[response(status = 500, description = "Internal error, logged in full")]
    Internal(ErrorBody),
    #[response(
        status = 503,
        description = "A shard the request needs is unreachable; retry later"
    )]
    Unavailable(ErrorBody),
}

impl ApiError {
    fn parts(self) -> (StatusCode, ErrorBody) {
        match self {
            ApiError::BadRequest(b) => (StatusCode::BAD_REQUEST, b),
            ApiError::Unauthorized(b) => (StatusCode::UNAUTHORIZED, b),
            ApiError::Disabled(b) => (StatusCode::FORBIDDEN, b),
            ApiError::NotFound(b) => (StatusCode::NOT_FOUND, b),
            ApiError::Stale(b) => (StatusCode::CONFLICT, b),
            ApiError::TooLarge(b) => (StatusCode::PAYLOAD_TOO_LARGE, b),
            ApiError::Internal(b) => (StatusCode::INTERNAL_SERVER_ERROR, b),
            ApiError::Unavailable(b) => (StatusCode::SERVICE_UNAVAILABLE, b),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        (status, Json(body)).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let body = ErrorBody {
            error: e.to_string(),
        };
        match &e {
            Error::QueueNotFound(_) | Error::TopicNotFound(_) | Error::SubscriptionNotFound(_) => {
                ApiError::NotFound(body)
            }
            Error::InvalidAttribute { .. }
            | Error::InvalidArgument { .. }
            | Error::MalformedReceipt(_) => ApiError::BadRequest(body),
            Error::MessageTooLarge { .. } => ApiError::TooLarge(body),
            Error::StaleReceipt => ApiError::Stale(body),
            Error::ShardUnavailable(_) | Error::PartlySent { .. } => ApiError::Unavailable(body),
            Error::Database(_) | Error::Grouped(_) => {
                tracing::error!(error = %e, "queue API request failed");
                ApiError::Internal(ErrorBody {
                    error: "internal error; see the server log".into(),
                })
            }
        }
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(ErrorBody {
        error: message.into(),
    })
}

type ApiResult<T> = Result<T, ApiError>;

fn seconds(s: f64, field: &'static str) -> ApiResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        bad_request(format!(
            "`{field}` must be a non-negative number of seconds"
        ))
    })
}
