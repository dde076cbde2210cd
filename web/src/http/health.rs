//! Liveness of the dependencies.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// 200 when Postgres and S3 both answer, 503 naming the one that does not.
async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    let db = sqlx::query_scalar!("select 1 as \"one!\"")
        .fetch_one(&state.pool)
        .await;
    let s3 = state.storage.health().await;
    match (db, s3) {
        (Ok(_), Ok(())) => (StatusCode::OK, "ok\n".into()),
        (db, s3) => {
            let mut down = Vec::new();
            if let Err(e) = db {
                tracing::warn!(error = %e, "health: Postgres is down");
                down.push("postgres");
            }
            if let Err(e) = s3 {
                tracing::warn!(error = %e, "health: S3 is down");
                down.push("s3");
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("down: {}\n", down.join(", ")),
            )
        }
    }
}
