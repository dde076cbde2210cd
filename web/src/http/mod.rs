//! HTTP routes, one module per resource, each with its own `router()`.

pub mod downloads;
pub mod error;
pub mod events;
pub mod health;
pub mod jobs;
pub mod openapi;
pub mod ui;
pub mod uploads;

use axum::Router;
use tower_http::trace::TraceLayer;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    let queue_api = queue::http::router(state.queues.clone(), state.settings.admin_token.clone());
    Router::new()
        .merge(jobs::router())
        .merge(downloads::router())
        .merge(events::router())
        .merge(openapi::router())
        .merge(uploads::router())
        .merge(health::router())
        .merge(ui::router())
        .with_state(state)
        .merge(queue_api)
        .fallback(|| async { error::AppError::NotFound })
        .layer(TraceLayer::new_for_http())
}
