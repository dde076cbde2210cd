//! The queue HTTP API as mounted by `darkroom-web`: a receive that waits
//! is woken by a send's NOTIFY, not by its fallback poll.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

const TOKEN: &str = "queue-api-test-token-3f9a1c7e5b2d";

/// The application name of the connections of [`woken_only_app`]'s queues,
/// so that their LISTEN is told from the app's other listeners.
const WOKEN_ONLY: &str = "darkroom-queue-api-woken-only";

/// An app with the admin token `TOKEN` whose queue API's receives are woken
/// by NOTIFY alone: their fallback poll is far above any wait, where the
/// usual 500 ms let a broken NOTIFY pass for a slow one. Serves until the
/// returned guard drops; the router is the one its queue API uses.
async fn woken_only_app(
    pool: PgPool,
) -> (
    std::net::SocketAddr,
    queue::Router,
    tokio_util::sync::DropGuard,
) {
    let storage_args = support::storage_args();
    let storage = common::storage::Storage::connect(&storage_args)
        .await
        .unwrap();
    let settings = web::Settings {
        admin_token: Some(queue::AdminToken::new(TOKEN).unwrap()),
        ..Default::default()
    };
    let mut state = web::AppState::new(pool.clone(), storage, settings)
        .await
        .unwrap();
    let options = pool.connect_options().as_ref().clone();
    let own = sqlx::postgres::PgPoolOptions::new()
        .connect_with(options.application_name(WOKEN_ONLY))
        .await
        .unwrap();
    let queues = queue::Queues::new(own).with_fallback_poll(Duration::from_secs(3600));
    state.router = queue::Router::new(queues);
    let router = state.router.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(web::serve(listener, admin, state, shutdown.clone()));
    (admin_addr, router, shutdown.drop_guard())
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn receive_with_wait_is_woken_by_a_send(pool: PgPool) {
    let (admin, router, _serving) = woken_only_app(pool.clone()).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{admin}/api/queues/w{path}");
    let put = client.put(url("")).bearer_auth(TOKEN).json(&json!({}));
    assert!(put.send().await.unwrap().status().is_success());
    let receiver = {
        let req = client
            .post(url("/receive"))
            .bearer_auth(TOKEN)
            .json(&json!({"wait": 20}));
        tokio::spawn(async move {
            let started = Instant::now();
            let body = req.send().await.unwrap().json::<Value>().await.unwrap();
            (body, started.elapsed())
        })
    };
    // Send once the receive waits, registered for wake-ups, and its
    // queues' LISTEN connection is up (the app's other long polls may have
    // started it already); a send that came first would be found at once.
    let q = router.control().open("w").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listening: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where application_name = $1 and query like 'LISTEN%'",
        )
        .bind(WOKEN_ONLY)
        .fetch_one(&pool)
        .await
        .unwrap();
        if listening > 0 && q.receives_waiting() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the receive never waited");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let send = client
        .post(url("/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"messages": [{"body": "hi"}]}));
    assert!(send.send().await.unwrap().status().is_success());
    let (body, waited) = receiver.await.unwrap();
    assert_eq!(body["messages"][0]["body"], "hi");
    assert!(waited < Duration::from_secs(3), "woke after {waited:?}");
}
