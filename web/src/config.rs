//! The `darkroom-web` command line.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use worker::storage::{Storage, StorageArgs};
use worker::telemetry;

use crate::{AppState, Settings, serve};

/// Darkroom web server: browser UI, jobs API, queue API.
#[derive(Parser, Debug)]
#[command(name = "darkroom-web", version)]
pub struct Config {
    /// Postgres connection URL (required).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "DARKROOM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Address of the admin listener: queue API, /metrics, the full
    /// OpenAPI description (default 127.0.0.1:8081). Keep it off the
    /// internet.
    #[arg(long, env = "DARKROOM_ADMIN_BIND", default_value = "127.0.0.1:8081")]
    pub admin_bind: String,
    /// Bearer token for the queue HTTP API, at least 24 random characters;
    /// unset: the queue API answers 403.
    #[arg(long, env = "DARKROOM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Largest uploaded file, in bytes (default 50 MiB).
    #[arg(long, env = "DARKROOM_MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// Largest image, in pixels (default 50 000 000).
    #[arg(long, env = "DARKROOM_MAX_PIXELS", default_value_t = 50_000_000)]
    pub max_pixels: u64,
    /// Log JSON lines instead of text (default false).
    #[arg(long, env = "DARKROOM_LOG_JSON")]
    pub log_json: bool,
}

/// Connects to Postgres and S3, applies migrations, serves until Ctrl-C/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    telemetry::init(config.log_json);
    // A weak token is refused before anything starts, not discovered later.
    let admin_token = config
        .admin_token
        .filter(|t| !t.is_empty())
        .map(|t| queue::http::AdminToken::new(&t))
        .transpose()?;
    let url = config.database_url.context(
        "DATABASE_URL is not set: export DATABASE_URL=postgres://user:pass@host:5432/db \
         or pass --database-url",
    )?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .context("cannot connect to Postgres at DATABASE_URL (is it running and reachable?)")?;
    queue::MIGRATOR
        .run(&pool)
        .await
        .context("applying database migrations")?;
    let storage = Storage::connect(&config.storage).await?;
    let mut settings = Settings::default();
    settings.limits.max_bytes = config.max_upload_bytes;
    settings.limits.max_pixels = config.max_pixels;
    settings.admin_token = admin_token;
    let state = AppState::new(pool, storage, settings).await?;
    let listener = TcpListener::bind(&config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (DARKROOM_BIND)", config.bind))?;
    let admin = TcpListener::bind(&config.admin_bind).await.with_context(|| {
        format!(
            "cannot listen on {} (DARKROOM_ADMIN_BIND; each web process on a host needs its own)",
            config.admin_bind
        )
    })?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, admin = %admin.local_addr()?, "listening");
    let signal = telemetry::shutdown_signal();
    let admin_addr = admin.local_addr()?;
    println!("Darkroom is up: http://{addr}/");
    println!("Admin listener (queue API, metrics): http://{admin_addr}/");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    serve(listener, admin, state, shutdown).await
}
