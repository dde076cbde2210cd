//! Shard tests' set-up: a router with short timings over the test's
//! database, private clusters listed as its shards, spread queues.

use std::time::Duration;

use queue::{QueueAttributes, Queues, Routed, Router};
use sqlx::PgPool;

use super::LOCK;
use testkit::cluster::Cluster;

/// Short timings, so that moves settle within a test.
pub const TTL: Duration = Duration::from_millis(50);
pub const RETIRE_AFTER: Duration = Duration::from_millis(300);

pub fn router(pool: &PgPool) -> Router {
    Router::with_timing(Queues::new(pool.clone()), TTL, RETIRE_AFTER)
}

/// Like [`router`], its receives woken by NOTIFY alone (see
/// [`super::NO_FALLBACK`]).
pub fn woken_only_router(pool: &PgPool) -> Router {
    Router::with_timing(super::woken_only(pool), TTL, RETIRE_AFTER)
}

/// `n` clusters, listed as shards `s1`..`sn` of the control database.
pub async fn shards(router: &Router, n: usize) -> Vec<Cluster> {
    let clusters: Vec<Cluster> = (0..n).map(|_| Cluster::start()).collect();
    for (i, c) in clusters.iter().enumerate() {
        router
            .add_shard(&format!("s{}", i + 1), &c.url())
            .await
            .unwrap();
    }
    clusters
}

/// Creates `name` spread over `on`.
pub async fn spread(router: &Router, name: &str, attrs: &QueueAttributes, on: &[&str]) -> Routed {
    router.create_on(name, attrs, on).await.unwrap();
    router.open(name).await.unwrap()
}

/// Receives until `want` messages came or `patience` ran out.
pub async fn receive_all(q: &Routed, want: usize, patience: Duration) -> Vec<queue::Message> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut got = Vec::new();
    while got.len() < want && tokio::time::Instant::now() < deadline {
        if let Ok(m) = q.receive_wait(10, LOCK, Duration::from_millis(200)).await {
            got.extend(m);
        }
    }
    got
}
