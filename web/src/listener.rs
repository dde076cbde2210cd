//! Serving a listener's connections under the deployment's time limits.
//!
//! A client that sends its headers or body a byte at a time holds a
//! connection, a task and whatever its request has buffered for as long as
//! it likes unless something ends it. Three limits do ([`Timeouts`]):
//! the headers must arrive within one (hyper's header read timeout, which
//! `axum::serve` cannot set: it gives hyper no timer), the body may not
//! pause longer than another between pieces, and the whole request must be
//! answered within a third (tower-http's body and request timeouts, in
//! [`crate::http`]). Responses that stream after their headers (progress
//! events, zips) are not bound by them.

use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long a client may take over each part of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the connection's first byte (or the previous response) to the
    /// end of the request's headers (`DARKROOM_HEADER_TIMEOUT`).
    pub header: Duration,
    /// Longest pause between two pieces of a request's body
    /// (`DARKROOM_BODY_IDLE_TIMEOUT`).
    pub body_idle: Duration,
    /// From the request's headers to its response's headers, the body read
    /// in between (`DARKROOM_REQUEST_TIMEOUT`): with the UI's one file per
    /// request, 10 minutes is a 50 MiB photo over 700 kbit/s.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(30),
            body_idle: Duration::from_secs(30),
            request: Duration::from_secs(600),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then waits for the
/// connections in progress to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after(e).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Its requests are told their client's address as axum's `ConnectInfo`.
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}

/// Waits before the next accept when accepting failed for want of a
/// resource (file descriptors, memory), which a retry at once would not
/// find either; a connection reset before it was accepted is no fault.
async fn pause_after(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; pausing a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
