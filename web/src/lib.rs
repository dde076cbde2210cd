//! Darkroom's web server: the jobs API, streamed uploads to S3, progress
//! (consuming the response queue) and downloads.
//!
//! # Layout
//! - [`config`]: the `darkroom-web` command line.
//! - [`http`]: routes, one module per resource, and the one [`http::error::AppError`].
//! - [`auth`]: job tokens.
//! - [`consumer`]: applies worker responses to output rows.
//! - [`events`]: which jobs changed, heard by every web process.
//! - [`metrics`]: the Prometheus metrics of `/metrics`.
//!
//! [`serve`] runs the HTTP server (jobs API and the queue HTTP API), the
//! response consumer and queue maintenance together until shutdown.

pub mod auth;
pub mod config;
pub mod consumer;
pub mod events;
pub mod http;
pub mod metrics;

use std::sync::Arc;

use events::JobEvents;
use queue::{Queue, Queues};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use worker::engine::Limits;
use worker::storage::Storage;

/// Limits and knobs of the web server.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Per-file limits (bytes, pixels, dimensions), checked while streaming.
    pub limits: Limits,
    /// Most files in one upload request.
    pub max_files_per_request: usize,
    /// Bearer token of the queue HTTP API; `None` disables it (403).
    pub admin_token: Option<queue::http::AdminToken>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_files_per_request: 500,
            admin_token: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub queues: Queues,
    pub storage: Storage,
    pub requests: Queue,
    pub responses: Queue,
    /// Requests that kept coming back unfinished; their outputs are failed.
    pub dead_requests: Queue,
    pub settings: Arc<Settings>,
    pub job_events: JobEvents,
}

impl AppState {
    /// Declares the queues the web server needs and builds the state.
    pub async fn new(pool: PgPool, storage: Storage, settings: Settings) -> anyhow::Result<Self> {
        let queues = Queues::new(pool.clone());
        let (requests, responses) = worker::runtime::declare_queues(&queues).await?;
        let dead_requests = queues.open(worker::protocol::DEAD_REQUEST_QUEUE).await?;
        Ok(Self {
            pool,
            queues,
            storage,
            requests,
            responses,
            dead_requests,
            settings: Arc::new(settings),
            job_events: JobEvents::default(),
        })
    }
}

/// Serves the public routes on `listener` and the admin routes (queue API,
/// metrics) on `admin`, and consumes responses, until `shutdown`; then
/// drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    admin: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    metrics::handle();
    let listener_task = tokio::spawn(
        state
            .job_events
            .clone()
            .listen(state.pool.clone(), shutdown.clone()),
    );
    let consumer = tokio::spawn(consumer::run(
        state.pool.clone(),
        state.responses.clone(),
        shutdown.clone(),
    ));
    let dead_letters = tokio::spawn(consumer::fail_dead_letters(
        state.pool.clone(),
        state.dead_requests.clone(),
        shutdown.clone(),
    ));
    let maintenance = tokio::spawn(queue::maintenance::run(
        state.pool.clone(),
        std::time::Duration::from_secs(10),
        shutdown.clone(),
    ));
    let admin_app = http::admin_router(state.clone());
    let stop = shutdown.clone();
    let admin_server = tokio::spawn(async move {
        axum::serve(admin, admin_app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    let app = http::router(state);
    let stop = shutdown.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    shutdown.cancel();
    served?;
    admin_server.await??;
    consumer.await?;
    dead_letters.await?;
    maintenance.await?;
    listener_task.await?;
    Ok(())
}
