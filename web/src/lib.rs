//! Darkroom's web server: the jobs API, streamed uploads to S3, progress
//! (consuming the response queue) and downloads.
//!
//! # Layout
//! - [`http`]: routes, one module per resource, and the one [`error::AppError`].
//! - [`auth`]: job tokens and the [`auth::JobAccess`] extractor.
//! - [`links`]: signed links, which open a download without the token.
//! - [`consumer`]: applies worker responses to output rows.
//! - [`events`]: which jobs changed, heard by every web process.
//! - [`metrics`]: the Prometheus metrics of `/metrics`.
//! - [`rate`]: per-client rates of job creation, uploads and work.
//! - [`work`]: what work on an image costs, from its header, and its charge.
//! - [`requests`]: request messages for workers, sent with their rows.
//! - [`places`]: what a client or job may hold open at once (streams, uploads).
//! - [`expiry`]: deletes jobs and their files once they expire.
//! - [`listener`]: serves a listener's connections under [`listener::Timeouts`].
//! - [`webhooks`]: jobs' webhooks, a topic's HTTP subscriptions.
//!
//! [`serve`] runs both listeners (public: UI and jobs API; admin: queue API
//! and metrics), the response consumer, queue maintenance and the sweeper
//! together until shutdown. The `darkroom-web` command line is
//! `src/main.rs`; what web shares with workers is the `common` crate.

// Public: what `main.rs` and the tests use beside [`AppState`] and
// [`serve`].
pub mod expiry;
pub mod links;
pub mod listener;
pub mod rate;
pub mod work;

mod auth;
mod consumer;
mod error;
mod events;
mod http;
mod metrics;
mod places;
mod requests;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use common::Limits;
use common::storage::Storage;
use events::JobEvents;
use queue::{Queues, Routed, Router};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Limits and knobs of the web server.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Per-file limits (bytes, pixels, dimensions, recipe cost), checked
    /// while streaming.
    pub limits: Limits,
    /// Most files in one upload request.
    pub max_files_per_request: usize,
    /// Most bytes in one upload request; the files read before the cut stay
    /// accepted.
    pub max_request_bytes: u64,
    /// Most images one job may hold.
    pub max_images_per_job: u32,
    /// How long a job and its files are kept after creation.
    pub job_ttl: Duration,
    /// Progress streams open at once on one job, from one client, and in
    /// all.
    pub max_streams_per_job: usize,
    pub max_streams_per_client: usize,
    pub max_streams: usize,
    /// Upload requests one client may have in progress at once: each may
    /// hold a part of a file (8 MiB) in memory while it arrives.
    pub max_uploads_per_client: usize,
    /// How long a job that gets no image is kept: its first upload extends
    /// it to `job_ttl`.
    pub empty_job_ttl: Duration,
    /// Per-client rates.
    pub rates: rate::RateSettings,
    /// Bearer token of the queue HTTP API; `None` disables it (403).
    pub admin_token: Option<queue::AdminToken>,
    /// Whether jobs' webhooks may point at private, loopback and
    /// link-local addresses (off: they could reach this server's network).
    pub allow_private_webhooks: bool,
    /// Whether webhooks go through HTTP_PROXY / HTTPS_PROXY: off, as a
    /// proxy would resolve names past the public-address filter.
    pub webhook_use_proxy: bool,
    /// The SQS endpoint on the admin listener (no keys: it refuses all).
    pub sqs: queue::SqsConfig,
    /// How long a client may take to send a request.
    pub timeouts: listener::Timeouts,
    /// Signs download and progress links (`DARKROOM_LINK_SECRET`).
    pub link_key: links::LinkKey,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_files_per_request: 500,
            max_request_bytes: 1 << 30,
            max_images_per_job: 1000,
            job_ttl: Duration::from_secs(7 * 24 * 3600),
            max_streams_per_job: 8,
            max_streams_per_client: 16,
            max_uploads_per_client: 6,
            max_streams: 2000,
            empty_job_ttl: Duration::from_secs(3600),
            rates: rate::RateSettings::default(),
            admin_token: None,
            allow_private_webhooks: false,
            webhook_use_proxy: false,
            sqs: queue::SqsConfig::default(),
            timeouts: listener::Timeouts::default(),
            link_key: links::LinkKey::random(),
        }
    }
}

impl Settings {
    pub(crate) fn stream_caps(&self) -> http::events::StreamCaps {
        http::events::StreamCaps {
            per_job: self.max_streams_per_job,
            per_client: self.max_streams_per_client,
            total: self.max_streams,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Where the queues live (this database, unless placed on shards).
    pub router: Router,
    pub storage: Storage,
    pub requests: Routed,
    pub responses: Routed,
    /// Requests that kept coming back unfinished; their outputs are failed.
    pub dead_requests: Routed,
    /// The job events topic and its subscriptions (webhooks).
    pub topics: queue::Topics,
    pub settings: Arc<Settings>,
    pub(crate) job_events: JobEvents,
    pub rates: Arc<rate::Rates>,
    /// Progress streams open now.
    pub(crate) streams: http::events::Streams,
    /// Upload requests in progress now, per client.
    pub(crate) uploads: places::Places<std::net::IpAddr>,
    /// Records uploaded images, many to a transaction under load.
    pub(crate) recorder: http::uploads::Recorder,
}

impl AppState {
    /// Declares the queues the web server needs and builds the state.
    pub async fn new(pool: PgPool, storage: Storage, settings: Settings) -> anyhow::Result<Self> {
        let router = Router::new(Queues::new(pool.clone()));
        let (requests, responses) = common::protocol::declare_queues(&router).await?;
        let dead_requests = router.open(common::protocol::DEAD_REQUEST_QUEUE).await?;
        let topics = common::protocol::declare_topics(&router).await?;
        let recorder = http::uploads::Recorder::start(
            pool.clone(),
            requests.clone(),
            settings.max_images_per_job,
        );
        Ok(Self {
            recorder,
            pool,
            router,
            storage,
            requests,
            responses,
            dead_requests,
            topics,
            rates: Arc::new(rate::Rates::new(&settings.rates)),
            streams: http::events::Streams::default(),
            uploads: places::Places::default(),
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
    let background = spawn_background(&state, &shutdown);
    let header_timeout = state.settings.timeouts.header;
    let admin_server = tokio::spawn(listener::serve(
        admin,
        http::admin_router(state.clone()),
        header_timeout,
        shutdown.clone(),
    ));
    listener::serve(
        listener,
        http::router(state),
        header_timeout,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    admin_server.await?;
    for task in background {
        task.await?;
    }
    Ok(())
}

/// What runs beside the HTTP server until `shutdown`: the job events
/// listener, the response and dead letter consumers, queue maintenance, the
/// topics' HTTP pusher, the sweeper of expired jobs, and the forgetting of
/// idle clients' buckets.
fn spawn_background(state: &AppState, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
    let (pool, storage) = (&state.pool, &state.storage);
    let rates = state.rates.clone();
    let forget = shutdown.clone();
    vec![
        tokio::spawn(
            state
                .job_events
                .clone()
                .listen(pool.clone(), shutdown.clone()),
        ),
        tokio::spawn(consumer::run(
            pool.clone(),
            storage.clone(),
            state.responses.clone(),
            state.topics.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(consumer::fail_dead_letters(
            pool.clone(),
            state.dead_requests.clone(),
            state.topics.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(
            queue::Maintenance::new(pool.clone()).run(Duration::from_secs(10), shutdown.clone()),
        ),
        // Topics' HTTP deliveries, shared by every web instance.
        tokio::spawn(
            queue::Pusher::new(state.router.control().clone())
                .use_env_proxy(state.settings.webhook_use_proxy)
                .run(shutdown.clone()),
        ),
        tokio::spawn(expiry::run(
            pool.clone(),
            storage.clone(),
            Duration::from_secs(60),
            shutdown.clone(),
        )),
        tokio::spawn(async move {
            while tokio::time::timeout(Duration::from_secs(60), forget.cancelled())
                .await
                .is_err()
            {
                rates.forget_idle();
            }
        }),
    ]
}
