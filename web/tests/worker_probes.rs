//! The worker's listener for orchestrators (`worker::health`): liveness,
//! readiness through start-up and shutdown, and the drain a preStop hook
//! asks for, on the real binary and, where a peer or a dependency must be
//! faked, on its router.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use common::health::Dependencies;
use common::storage::{Storage, StorageArgs};
use sqlx::PgPool;
use support::{ChildGuard, database_url, run_ok, storage_args, test_env, workspace_bin};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use worker::health::{Probes, router};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `url` until it answers `want`, failing after `limit`; the body.
async fn answers(url: &str, want: StatusCode, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        if let Ok(res) = reqwest::get(url).await {
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            if status == want.as_u16() {
                return body;
            }
            last = format!("{status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer {want} within {limit:?}; last: {last}");
}

fn worker(pool_url: &str, bind: &str) -> Command {
    let mut cmd = Command::new(workspace_bin("darkroom-worker"));
    cmd.env("DATABASE_URL", pool_url)
        .env("DARKROOM_WORKER_METRICS_BIND", bind)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

#[sqlx::test(migrations = false)]
async fn a_worker_waiting_for_its_schema_is_alive_but_not_ready(pool: PgPool) {
    let bind = format!("127.0.0.1:{}", free_port());
    let storage = storage_args();
    let mut cmd = worker(&database_url(&pool), &bind);
    cmd.env("DARKROOM_WORKER_SCHEMA", "wait")
        .env("AWS_ENDPOINT_URL", storage.endpoint_url.as_deref().unwrap());
    let _child = ChildGuard(cmd.spawn().unwrap());

    answers(
        &format!("http://{bind}/livez"),
        StatusCode::OK,
        Duration::from_secs(30),
    )
    .await;
    let why = answers(
        &format!("http://{bind}/healthz"),
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(why, "starting\n");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_connected_worker_is_ready_and_a_drain_stops_it_cleanly(pool: PgPool) {
    let bind = format!("127.0.0.1:{}", free_port());
    let mut cmd = worker(&database_url(&pool), &bind);
    test_env(&mut cmd, &pool, &storage_args());
    let mut child = ChildGuard(cmd.spawn().unwrap());
    answers(
        &format!("http://{bind}/healthz"),
        StatusCode::OK,
        Duration::from_secs(60),
    )
    .await;
    answers(
        &format!("http://{bind}/metrics"),
        StatusCode::OK,
        Duration::from_secs(5),
    )
    .await;

    // What a preStop hook runs.
    run_ok(
        Command::new(workspace_bin("darkroom-worker"))
            .arg("drain")
            .env("DARKROOM_WORKER_METRICS_BIND", &bind),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the drained worker did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[test]
fn drain_without_a_listener_to_ask_says_so() {
    let out = Command::new(workspace_bin("darkroom-worker"))
        .arg("drain")
        .env_remove("DARKROOM_WORKER_METRICS_BIND")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("DARKROOM_WORKER_METRICS_BIND is not set"),
        "{stderr}"
    );
}

async fn ask(probes: &Probes, peer: [u8; 4], method: &str, path: &str) -> (StatusCode, String) {
    let app = router(probes.clone()).layer(MockConnectInfo(SocketAddr::from((peer, 40000))));
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(request).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_drain_is_taken_from_the_pods_loopback_only(pool: PgPool) {
    let shutdown = CancellationToken::new();
    let probes = Probes::new(shutdown.clone());
    probes.connected(Dependencies {
        pool,
        storage: Storage::connect(&storage_args()).await.unwrap(),
    });
    assert_eq!(
        ask(&probes, [127, 0, 0, 1], "GET", "/healthz").await.0,
        StatusCode::OK
    );

    let (status, _) = ask(&probes, [10, 1, 2, 3], "POST", "/drain").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        !shutdown.is_cancelled(),
        "a drain from the network is refused"
    );

    let (status, _) = ask(&probes, [127, 0, 0, 1], "POST", "/drain").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(shutdown.is_cancelled());
    let (status, why) = ask(&probes, [127, 0, 0, 1], "GET", "/healthz").await;
    assert_eq!(
        (status, why.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    );
    let (status, _) = ask(&probes, [127, 0, 0, 1], "GET", "/livez").await;
    assert_eq!(status, StatusCode::OK, "draining is alive");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn readiness_names_the_dependency_that_is_down(pool: PgPool) {
    let probes = Probes::new(CancellationToken::new());
    let unreachable = StorageArgs {
        endpoint_url: Some("http://127.0.0.1:9".into()),
        ..storage_args()
    };
    probes.connected(Dependencies {
        pool,
        storage: Storage::new(&unreachable).await,
    });
    let (status, why) = ask(&probes, [127, 0, 0, 1], "GET", "/healthz").await;
    assert_eq!(
        (status, why.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "down: s3\n")
    );
}
