//! Jobs' webhooks: a real job's `image.failed` and `job.done` events POSTed
//! to a local endpoint, signed with the job's webhook secret and the time
//! (so a receiver can refuse replays); private
//! addresses refused unless allowed; the subscription gone with its job.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{Job, app_with, expect_json, photo, poll, spawn_app, spawn_worker, thumbnail};

/// How old a signature the README tells receivers to accept.
const REPLAY_TOLERANCE: Duration = Duration::from_secs(300);

/// A local endpoint that records each POST's headers and JSON body.
async fn endpoint() -> (String, Arc<Mutex<Vec<(HeaderMap, String)>>>) {
    let calls: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let calls = calls.clone();
            move |headers: HeaderMap, body: String| async move {
                calls.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_jobs_webhook_gets_its_failures_and_its_end_signed(pool: PgPool) {
    let app = app_with(pool.clone(), |s| s.allow_private_webhooks = true).await;
    let _worker = spawn_worker(&pool, &app.storage_args);
    let (url, calls) = endpoint().await;
    let created = expect_json(
        app.post_json(
            "/api/jobs",
            &json!({"recipes": thumbnail("thumb", 64), "webhook": url}),
        )
        .await,
        201,
    )
    .await;
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    let job = Job::from_created(&created);
    let jpeg = photo("rocket.jpg");
    let files = [
        ("rocket.jpg", jpeg.clone()),
        ("cut.jpg", jpeg[..jpeg.len() / 2].to_vec()),
    ];
    expect_json(app.upload(&job, &files).await, 201).await;

    let events: Vec<(HeaderMap, Value)> = poll(Duration::from_secs(60), async || {
        let calls = calls.lock().unwrap().clone();
        let events: Vec<(HeaderMap, Value)> = calls
            .into_iter()
            .map(|(h, b)| (h, serde_json::from_str(&b).unwrap()))
            .collect();
        // Deliveries are concurrent, so `job.done` may land before the
        // failure published ahead of it: wait for both.
        let done = events.iter().any(|(_, e)| msg(e)["event"] == "job.done");
        if done && events.len() >= 2 {
            Ok(events)
        } else {
            Err(format!("{} events so far", events.len()))
        }
    })
    .await;
    let mut kinds: Vec<String> = events
        .iter()
        .map(|(_, e)| msg(e)["event"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["image.failed", "job.done"], "{events:?}");
    let done = events
        .iter()
        .map(|(_, e)| msg(e))
        .find(|e| e["event"] == "job.done")
        .unwrap();
    assert_eq!(done["job"], job.id.as_str());
    assert_eq!(done["counts"], json!({"total": 2, "done": 1, "failed": 1}));
    let now = chrono::Utc::now().timestamp();
    for (headers, body) in calls.lock().unwrap().iter() {
        let signed = headers["darkroom-signature"].to_str().unwrap();
        assert!(
            queue::Pusher::verify_signature(&secret, signed, body, now, REPLAY_TOLERANCE),
            "{signed}"
        );
        assert_eq!(
            headers["x-cmq-signature"],
            queue::topic_signature(&secret, body).as_str()
        );
        assert_eq!(headers["x-cmq-message-tag"], job.id.as_str());
    }

    // The webhook goes with its job.
    sqlx::query("update jobs set expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    web::expiry::sweep(&pool, &app.storage).await.unwrap();
    let topics = queue::Topics::new(queue::Queues::new(pool.clone()));
    let subs = topics
        .subscriptions(common::protocol::EVENTS_TOPIC)
        .await
        .unwrap();
    assert!(subs.is_empty(), "{subs:?}");
}

/// The event a delivery carries (the JSON format wraps it in `msgBody`).
fn msg(delivery: &Value) -> Value {
    serde_json::from_str(delivery["msgBody"].as_str().unwrap()).unwrap()
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn webhooks_to_private_addresses_or_not_urls_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    for webhook in [
        json!("http://127.0.0.1:8081/api/queues"),
        json!("http://169.254.169.254/latest/meta-data/"),
        json!("http://localhost/hook"),
        json!("ftp://example.com/hook"),
        json!("not a url"),
        json!(42),
    ] {
        let res = app
            .post_json(
                "/api/jobs",
                &json!({"recipes": thumbnail("thumb", 64), "webhook": webhook}),
            )
            .await;
        let body = expect_json(res, 400).await;
        assert!(
            body["error"].as_str().unwrap().contains("webhook"),
            "{body}"
        );
    }
}
