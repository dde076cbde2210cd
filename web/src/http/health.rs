//! Liveness of the dependencies, and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use common::health::Dependencies;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz))
}

/// `/metrics`, served on the admin listener only.
pub fn metrics_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// 200 when Postgres and S3 both answer, 503 naming the one that does not.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Postgres and S3 answer", body = String),
        (status = 503, description = "Names what is down", body = String),
    )
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    let dependencies = Dependencies {
        pool: state.pool.clone(),
        storage: state.storage.clone(),
    };
    let down = dependencies.down().await;
    if down.is_empty() {
        (StatusCode::OK, "ok\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("down: {}\n", down.join(", ")),
        )
    }
}

/// Prometheus text: the counters and histograms kept as things happen, and
/// the queue depths read now.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for q in [&state.requests, &state.responses, &state.dead_requests] {
        match q.stats().await {
            Ok(stats) => crate::metrics::queue_depth(q.name(), &stats),
            Err(e) => tracing::warn!(queue = q.name(), error = %e, "metrics: queue stats failed"),
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}
