//! HTTP routes, one module per resource, each with its own `router()`.

pub mod error;
pub mod health;
pub mod jobs;
pub mod uploads;

use axum::Router;
use tower_http::trace::TraceLayer;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(jobs::router())
        .merge(uploads::router())
        .merge(health::router())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
