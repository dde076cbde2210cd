//! The worker's listener for orchestrators and Prometheus, on
//! `DARKROOM_WORKER_METRICS_BIND`: `/metrics`; `/livez`, answered while the
//! process is (a liveness probe: a worker waiting out a Postgres outage is
//! alive, and restarting it would not help); `/healthz`, 200 once Postgres
//! and S3 answer and while the worker leases, else 503 naming why (a
//! readiness probe, which a rolling update waits for); and `POST /drain`,
//! which stops leasing as SIGTERM does, taken only from the pod's own
//! loopback (`darkroom-worker drain`, a preStop hook). Served from before
//! the worker connects until it exits, so that its state stays readable
//! through start-up and shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use common::health::Dependencies;
use common::telemetry;
use tokio_util::sync::CancellationToken;

/// What the probes read: the dependencies once connected, and the
/// worker's shutdown, which `/drain` triggers.
#[derive(Clone, Debug)]
pub struct Probes {
    connected: Arc<OnceLock<Dependencies>>,
    shutdown: CancellationToken,
}

impl Probes {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            connected: Arc::default(),
            shutdown,
        }
    }

    /// The worker has connected and declared its queues: readiness checks
    /// these from now on.
    pub fn connected(&self, dependencies: Dependencies) {
        let _ = self.connected.set(dependencies);
    }

    /// Why the worker is not ready, or `None` when it is.
    async fn not_ready(&self) -> Option<String> {
        if self.shutdown.is_cancelled() {
            return Some("draining".into());
        }
        let Some(dependencies) = self.connected.get() else {
            return Some("starting".into());
        };
        let down = dependencies.down().await;
        (!down.is_empty()).then(|| format!("down: {}", down.join(", ")))
    }
}

/// The listener's routes.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/metrics", get(|| async { telemetry::metrics().render() }))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/healthz", get(ready))
        .route("/drain", post(drain))
        .with_state(probes)
}

/// Serves [`router`] on `listener` until the process exits.
pub async fn serve(listener: tokio::net::TcpListener, probes: Probes) {
    let app = router(probes).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "health and metrics listener failed");
    }
}

async fn ready(State(probes): State<Probes>) -> (StatusCode, String) {
    match probes.not_ready().await {
        None => (StatusCode::OK, "ok\n".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// Anyone who can reach the listener could otherwise stop a fleet's
/// leasing; a preStop hook runs inside the pod, on its loopback.
async fn drain(
    State(probes): State<Probes>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> (StatusCode, &'static str) {
    if !peer.ip().is_loopback() {
        return (
            StatusCode::FORBIDDEN,
            "drain is taken from the pod's own loopback only\n",
        );
    }
    tracing::info!("drain requested: no more leases; messages in hand finish within the grace");
    probes.shutdown.cancel();
    (StatusCode::ACCEPTED, "draining\n")
}
