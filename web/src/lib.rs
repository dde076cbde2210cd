//! Darkroom's web server: the jobs API, streamed uploads to S3, progress
//! (consuming the response queue) and downloads.
//!
//! # Layout
//! - [`config`]: the `darkroom-web` command line.
//! - [`http`]: routes, one module per resource, and the one [`http::error::AppError`].
//! - [`auth`]: job tokens.
//! - [`consumer`]: applies worker responses to output rows.
//!
//! [`serve`] runs the HTTP server and the consumer together until shutdown.

pub mod auth;
pub mod config;
pub mod consumer;
pub mod http;

use std::sync::Arc;

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_files_per_request: 500,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub storage: Storage,
    pub requests: Queue,
    pub responses: Queue,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Declares the queues the web server needs and builds the state.
    pub async fn new(pool: PgPool, storage: Storage, settings: Settings) -> anyhow::Result<Self> {
        let (requests, responses) =
            worker::runtime::declare_queues(&Queues::new(pool.clone())).await?;
        Ok(Self {
            pool,
            storage,
            requests,
            responses,
            settings: Arc::new(settings),
        })
    }
}

/// Serves HTTP on `listener` and consumes responses until `shutdown`, then
/// drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = tokio::spawn(consumer::run(
        state.pool.clone(),
        state.responses.clone(),
        shutdown.clone(),
    ));
    let app = http::router(state);
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    shutdown.cancel();
    consumer.await?;
    Ok(())
}
