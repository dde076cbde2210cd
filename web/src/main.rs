//! `darkroom-web`: the web server (see the `web` crate).

use std::time::Duration;

use std::process::ExitCode;

use anyhow::Context;
use axum::http::HeaderName;
use clap::Parser;
use common::protocol::declare_queues;
use common::storage::{Storage, StorageArgs};
use common::{Limits, db, telemetry};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use web::links::LinkKey;
use web::listener::Timeouts;
use web::rate::RateSettings;
use web::{AppState, Settings, serve};

/// Darkroom web server: browser UI, jobs API, queue API.
#[derive(Parser, Debug)]
#[command(name = "darkroom-web", version)]
struct Config {
    #[command(subcommand)]
    command: Option<Command>,
    /// Postgres connection URL (required).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Postgres role of the workers, when they have one of their own
    /// (DARKROOM_WORKER_SCHEMA=wait on them): granted, after migrating,
    /// what workers use and nothing else. Unset: workers share this
    /// server's role.
    #[arg(long, env = "DARKROOM_WORKER_DB_ROLE")]
    worker_db_role: Option<String>,
    /// Postgres role of an autoscaler (KEDA's PostgreSQL scaler): granted,
    /// after migrating, the view `queue_backlog` and nothing else.
    #[arg(long, env = "DARKROOM_SCALER_DB_ROLE")]
    scaler_db_role: Option<String>,
    #[command(flatten)]
    storage: StorageArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "DARKROOM_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// Address of the admin listener: queue API, /metrics, the full
    /// OpenAPI description (default 127.0.0.1:8081). Keep it off the
    /// internet.
    #[arg(long, env = "DARKROOM_ADMIN_BIND", default_value = "127.0.0.1:8081")]
    admin_bind: String,
    /// Bearer token for the queue HTTP API, at least 24 random characters;
    /// unset: the queue API answers 403.
    #[arg(long, env = "DARKROOM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Key of signed download links, at least 32 random characters; every
    /// web process behind one balancer needs the same. Unset: a random key
    /// of this process, whose links no other process opens.
    #[arg(long, env = "DARKROOM_LINK_SECRET", hide_env_values = true)]
    link_secret: Option<String>,
    /// The SQS endpoint on the admin listener.
    #[command(flatten)]
    sqs: queue::SqsArgs,
    /// Let jobs' webhooks point at private, loopback and link-local
    /// addresses (default false: they could reach this server's own
    /// network). For a closed network only.
    #[arg(long, env = "DARKROOM_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
    /// Send webhooks through HTTP_PROXY / HTTPS_PROXY (default false: a
    /// proxy resolves names past the public-address filter).
    #[arg(long, env = "DARKROOM_WEBHOOK_USE_PROXY")]
    webhook_use_proxy: bool,
    /// Largest uploaded file, in bytes (default 50 MiB).
    #[arg(long, env = "DARKROOM_MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024)]
    max_upload_bytes: u64,
    /// Largest image read or made, width × height in pixels (default
    /// 50 000 000).
    #[arg(long, env = "DARKROOM_MAX_PIXELS", default_value_t = 50_000_000)]
    max_pixels: u64,
    /// Most work one recipe may cost, in passes over a DARKROOM_MAX_PIXELS
    /// image (default 64; see the README).
    #[arg(long, env = "DARKROOM_MAX_RECIPE_COST", default_value_t = 64)]
    max_recipe_cost: u32,
    /// Largest upload request, in bytes (default 1 GiB); the files read
    /// before the cut are kept and reported.
    #[arg(long, env = "DARKROOM_MAX_REQUEST_BYTES", default_value_t = 1 << 30)]
    max_request_bytes: u64,
    /// Most images in one job (default 1000).
    #[arg(long, env = "DARKROOM_MAX_IMAGES_PER_JOB", default_value_t = 1000)]
    max_images_per_job: u32,
    /// How long a job and its files are kept, in seconds (default 604800,
    /// 7 days).
    #[arg(long, env = "DARKROOM_JOB_TTL", default_value_t = 7 * 24 * 3600)]
    job_ttl: u64,
    /// Progress streams open at once on one job (default 8).
    #[arg(long, env = "DARKROOM_MAX_STREAMS_PER_JOB", default_value_t = 8)]
    max_streams_per_job: usize,
    /// Progress streams one client may hold open at once (default 16).
    #[arg(long, env = "DARKROOM_MAX_STREAMS_PER_CLIENT", default_value_t = 16)]
    max_streams_per_client: usize,
    /// Upload requests one client may have in progress at once (default 6).
    #[arg(long, env = "DARKROOM_MAX_UPLOADS_PER_CLIENT", default_value_t = 6)]
    max_uploads_per_client: usize,
    /// How long a job that gets no image is kept, in seconds (default
    /// 3600); its first upload extends it to DARKROOM_JOB_TTL.
    #[arg(long, env = "DARKROOM_EMPTY_JOB_TTL", default_value_t = 3600)]
    empty_job_ttl: u64,
    /// Progress streams open at once in this process (default 2000).
    #[arg(long, env = "DARKROOM_MAX_STREAMS", default_value_t = 2000)]
    max_streams: usize,
    /// Requests of any kind one client may make per second, with bursts of
    /// twice that (default 50; 0: no limit).
    #[arg(long, env = "DARKROOM_RATE_LIMIT_REQUESTS", default_value_t = 50)]
    rate_limit_requests: u32,
    /// Jobs one client may create per minute (default 60; 0: no limit).
    #[arg(long, env = "DARKROOM_RATE_LIMIT_JOBS", default_value_t = 60)]
    rate_limit_jobs: u32,
    /// Upload requests one client may make per minute (default 600; 0: no
    /// limit).
    #[arg(long, env = "DARKROOM_RATE_LIMIT_UPLOADS", default_value_t = 600)]
    rate_limit_uploads: u32,
    /// Work one client's uploads may ask for per minute, in megapixel passes
    /// (default 6000, about a quarter of one core; 0: no limit).
    #[arg(long, env = "DARKROOM_RATE_LIMIT_WORK", default_value_t = 6_000)]
    rate_limit_work: u32,
    /// Header a trusted reverse proxy puts the client's address in, e.g.
    /// x-forwarded-for (its last entry counts); default: the connection's
    /// peer address. Set it only behind such a proxy.
    #[arg(long, env = "DARKROOM_CLIENT_IP_HEADER")]
    client_ip_header: Option<HeaderName>,
    /// Seconds a client may take to send a request's headers (default 30).
    #[arg(long, env = "DARKROOM_HEADER_TIMEOUT", default_value_t = 30)]
    header_timeout: u64,
    /// Longest pause, in seconds, between two pieces of a request's body
    /// (default 30).
    #[arg(long, env = "DARKROOM_BODY_IDLE_TIMEOUT", default_value_t = 30)]
    body_idle_timeout: u64,
    /// Seconds from a request's headers to its answer, its body read in
    /// between (default 600: a 50 MiB file over 700 kbit/s); past it, 408.
    #[arg(long, env = "DARKROOM_REQUEST_TIMEOUT", default_value_t = 600)]
    request_timeout: u64,
    /// Log JSON lines instead of text (default false).
    #[arg(long, env = "DARKROOM_LOG_JSON")]
    log_json: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Apply the migrations, grant the workers' and the scaler's roles,
    /// declare the queues, and exit (a deployment's migration job; the
    /// server also does all this at start).
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.log_json);
    let done = match config.command {
        Some(Command::Migrate) => migrate(&config).await,
        None => run(config).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Applies the migrations and grants the roles configured; the pool it did
/// so on. The server declares the queues itself (`AppState::new`).
async fn prepare_database(config: &Config) -> anyhow::Result<PgPool> {
    let pool = db::connect_and_migrate(config.database_url.as_deref(), 16).await?;
    if let Some(role) = &config.worker_db_role {
        db::grant_worker(&pool, role).await?;
    }
    if let Some(role) = &config.scaler_db_role {
        db::grant_scaler(&pool, role).await?;
    }
    Ok(pool)
}

/// `darkroom-web migrate`: what the server does before it serves, and no
/// more.
async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = prepare_database(config).await?;
    declare_queues(&queue::Router::new(queue::Queues::new(pool))).await?;
    Ok(())
}

/// Connects to Postgres and S3, applies migrations, serves until Ctrl-C/SIGTERM.
async fn run(config: Config) -> anyhow::Result<()> {
    // A weak token is refused before anything starts, not discovered later.
    let admin_token = config
        .admin_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(queue::AdminToken::new)
        .transpose()?;
    let link_key = match config.link_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) => LinkKey::from_secret(secret)?,
        None => LinkKey::random(),
    };
    let pool = prepare_database(&config).await?;
    let storage = Storage::connect(&config.storage).await?;
    let settings = Settings {
        limits: Limits {
            max_bytes: config.max_upload_bytes,
            max_pixels: config.max_pixels,
            max_recipe_cost: config.max_recipe_cost,
            ..Limits::default()
        },
        max_request_bytes: config.max_request_bytes,
        max_images_per_job: config.max_images_per_job,
        job_ttl: Duration::from_secs(config.job_ttl),
        max_streams_per_job: config.max_streams_per_job,
        max_streams_per_client: config.max_streams_per_client,
        max_uploads_per_client: config.max_uploads_per_client,
        empty_job_ttl: Duration::from_secs(config.empty_job_ttl),
        max_streams: config.max_streams,
        rates: RateSettings {
            requests_per_second: config.rate_limit_requests,
            jobs_per_minute: config.rate_limit_jobs,
            uploads_per_minute: config.rate_limit_uploads,
            work_per_minute: config.rate_limit_work,
            client_ip_header: config.client_ip_header,
        },
        admin_token,
        sqs: config.sqs.into(),
        allow_private_webhooks: config.webhook_allow_private,
        webhook_use_proxy: config.webhook_use_proxy,
        timeouts: Timeouts {
            header: Duration::from_secs(config.header_timeout),
            body_idle: Duration::from_secs(config.body_idle_timeout),
            request: Duration::from_secs(config.request_timeout),
        },
        link_key,
        ..Settings::default()
    };
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
    println!("Admin listener (queue API, SQS endpoint, metrics): http://{admin_addr}/");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    serve(listener, admin, state, shutdown).await
}
