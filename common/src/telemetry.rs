//! Logging, metrics and shutdown signals, shared by the Darkroom binaries.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use (call it at
/// start-up so nothing recorded before the first scrape is lost). Every
/// `*_seconds` histogram gets buckets from 5 ms to 15 min.
pub fn metrics() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0, 900.0,
                ],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Only this function installs a recorder; should something else
        // have, /metrics stays empty rather than the process failing.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Logs to stderr, human-readable or JSON lines. `RUST_LOG` overrides the
/// default level (`info`).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves when the process gets Ctrl-C or SIGTERM. The handlers are
/// installed by this call, not when the future is first polled: a signal
/// sent right after start-up is announced must not meet the default action
/// (killing the process) because the task awaiting it has not run yet.
#[cfg(unix)]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn recv(installed: std::io::Result<Signal>) {
        match installed {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    }
    let interrupt = recv(signal(SignalKind::interrupt()));
    let terminate = recv(signal(SignalKind::terminate()));
    async move {
        tokio::select! {
            () = interrupt => {},
            () = terminate => {},
        }
    }
}

/// Resolves when the process gets Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
