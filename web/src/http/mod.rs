//! HTTP routes, one module per resource, each with its own `router()`:
//! `jobs` (create, delete), `status` (a job's state, paged), `uploads`,
//! `recipes` (more recipes on a job's originals), `retry` (a failed output
//! again), `events` (progress stream), `downloads`, `ui`, `health`,
//! `openapi`. Every handler answers with the one [`crate::error::AppError`].
//!
//! Two listeners: the public one (browser UI, jobs API, `/healthz`) and the
//! admin one (queue API, `/metrics`, the full OpenAPI description), which
//! binds to loopback unless told otherwise and never shares the public port.

pub mod downloads;
pub mod events;
pub mod health;
pub mod jobs;
pub mod openapi;
pub mod recipes;
pub mod retry;
pub mod status;
pub mod ui;
pub mod uploads;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::listener::Timeouts;

/// What browsers may load and do on our pages: our own scripts, styles and
/// API only, images from us or made in the page, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The public listener's routes.
pub fn router(state: AppState) -> Router {
    let timeouts = state.settings.timeouts;
    let limit = axum::middleware::from_fn_with_state(state.clone(), crate::rate::limit_requests);
    let (api, doc) = api(state.settings.max_request_bytes).split_for_parts();
    let public = api
        .merge(openapi::router(doc))
        .merge(ui::router())
        .with_state(state)
        .fallback(|| async { crate::error::AppError::NotFound })
        .layer(limit);
    hardened(public, &timeouts)
}

/// The admin listener's routes: the queue API (bearer
/// `DARKROOM_ADMIN_TOKEN`), metrics and the whole OpenAPI description.
pub fn admin_router(state: AppState) -> Router {
    let timeouts = state.settings.timeouts;
    let queue_api = queue::http_router(state.router.clone(), state.settings.admin_token.clone());
    let sqs = queue::sqs_router(state.router.clone(), state.settings.sqs.clone());
    let (operations, doc) = admin_api().split_for_parts();
    let doc = openapi::document(api(state.settings.max_request_bytes).into_openapi(), doc);
    let admin = operations
        .merge(openapi::router(doc))
        .with_state(state)
        .merge(queue_api)
        .merge(sqs)
        .fallback(|| async { crate::error::AppError::NotFound });
    hardened(admin, &timeouts)
}

/// The public listener's documented routes: the jobs API and `/healthz`.
fn api(max_request_bytes: u64) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(jobs::router())
        .merge(status::router())
        .merge(recipes::router())
        .merge(retry::router())
        .merge(downloads::router())
        .merge(events::router())
        .merge(uploads::router(max_request_bytes))
        .merge(health::router())
}

/// The admin listener's own documented routes, beside the queue API.
fn admin_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(health::metrics_router())
}

/// Security headers on every response, request logs that leave out query
/// strings (signed links carry their signatures there), and
/// the time limits on a request's body and on the whole request (408).
fn hardened(router: Router, timeouts: &Timeouts) -> Router {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(RequestBodyTimeoutLayer::new(timeouts.body_idle))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeouts.request,
        ))
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = request.uri().path(),
                )
            }),
        )
}
