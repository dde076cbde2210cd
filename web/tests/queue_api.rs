//! The queue HTTP API as mounted by `darkroom-web`.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{TestApp, spawn_app_with};
use web::Settings;

const TOKEN: &str = "queue-api-test-token-3f9a1c7e5b2d";

/// Makes every lease expire now, instead of sleeping through it. Stats see
/// expiry by the clock alone; moved back in time like this, their counters
/// must be told.
async fn expire_leases(pool: &PgPool) {
    sqlx::query("update queue_messages set visible_at = now() - interval '1 second'")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("update queue_counters set leased = 0, delayed = 0")
        .execute(pool)
        .await
        .unwrap();
}

async fn app(pool: PgPool) -> TestApp {
    spawn_app_with(
        pool,
        Settings {
            admin_token: Some(queue::AdminToken::new(TOKEN).unwrap()),
            ..Settings::default()
        },
    )
    .await
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method.parse().unwrap(), app.admin_url(path))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn without_admin_token_configured_everyone_gets_403(pool: PgPool) {
    let app = spawn_app_with(pool, Settings::default()).await;
    let res = app
        .client
        .get(app.admin_url("/api/queues"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("DARKROOM_ADMIN_TOKEN")
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn wrong_or_missing_admin_token_is_401(pool: PgPool) {
    let app = app(pool).await;
    let res = app
        .client
        .get(app.admin_url("/api/queues"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(app.admin_url("/api/queues"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn send_receive_delete_round_trip(pool: PgPool) {
    let app = app(pool).await;
    let (status, created) = call(
        &app,
        "PUT",
        "/api/queues/orders",
        Some(json!({"visibility_timeout": 45})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["visibility_timeout"], 45.0);
    let (status, _) = call(&app, "PUT", "/api/queues/orders", Some(json!({"delay": 0}))).await;
    assert_eq!(status, 200, "updating an existing queue");

    let (status, sent) = call(
        &app,
        "POST",
        "/api/queues/orders/messages",
        Some(json!({"messages":[{"body":"one"},{"body":"two"}]})),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let ids = sent["ids"].as_array().unwrap();
    assert!(ids[0].as_i64() < ids[1].as_i64());

    let (status, got) = call(
        &app,
        "POST",
        "/api/queues/orders/receive",
        Some(json!({"max": 10, "lock": 30})),
    )
    .await;
    assert_eq!(status, 200);
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["body"], "one");
    assert_eq!(messages[0]["receive_count"], 1);
    let receipts: Vec<_> = messages.iter().map(|m| m["receipt"].clone()).collect();

    let (status, stats) = call(&app, "GET", "/api/queues/orders", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["stats"]["in_flight"], 2);

    let (status, deleted) = call(
        &app,
        "POST",
        "/api/queues/orders/delete",
        Some(json!({"receipts": receipts})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"].as_array().unwrap().len(), 2);
    assert_eq!(deleted["stale"], json!([]));

    // Deleting again: both receipts are now stale.
    let (_, again) = call(
        &app,
        "POST",
        "/api/queues/orders/delete",
        Some(json!({"receipts": receipts})),
    )
    .await;
    assert_eq!(again["stale"].as_array().unwrap().len(), 2);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn stale_receipt_visibility_change_is_409(pool: PgPool) {
    let app = app(pool.clone()).await;
    call(&app, "PUT", "/api/queues/q", Some(json!({}))).await;
    call(
        &app,
        "POST",
        "/api/queues/q/messages",
        Some(json!({"messages":[{"body":"x"}]})),
    )
    .await;
    let (_, got) = call(
        &app,
        "POST",
        "/api/queues/q/receive",
        Some(json!({"lock": 30})),
    )
    .await;
    let receipt = got["messages"][0]["receipt"].clone();
    let (status, _) = call(
        &app,
        "POST",
        "/api/queues/q/visibility",
        Some(json!({"receipt": receipt, "lock": 60})),
    )
    .await;
    assert_eq!(status, 200);
    expire_leases(&pool).await;
    let (status, body) = call(
        &app,
        "POST",
        "/api/queues/q/visibility",
        Some(json!({"receipt": receipt, "lock": 60})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn bad_input_gets_clear_errors(pool: PgPool) {
    let app = app(pool).await;
    let (status, body) = call(&app, "GET", "/api/queues/nope", None).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("nope"));

    let (status, body) = call(
        &app,
        "PUT",
        "/api/queues/q",
        Some(json!({"visibility_timeout": 0})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("visibility_timeout"),
        "{body}"
    );

    let (status, body) = call(
        &app,
        "PUT",
        "/api/queues/q",
        Some(json!({"colour": "blue"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("colour"), "{body}");

    call(
        &app,
        "PUT",
        "/api/queues/small",
        Some(json!({"max_message_bytes": 4})),
    )
    .await;
    let (status, _) = call(
        &app,
        "POST",
        "/api/queues/small/messages",
        Some(json!({"messages":[{"body":"too long"}]})),
    )
    .await;
    assert_eq!(status, 413);

    let (status, body) = call(
        &app,
        "POST",
        "/api/queues/small/delete",
        Some(json!({"receipts":["garbage"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, _) = call(
        &app,
        "POST",
        "/api/queues/small/receive",
        Some(json!({"max": 5000})),
    )
    .await;
    assert_eq!(status, 400);

    let (status, _) = call(&app, "POST", "/api/queues/small/rewind", Some(json!({}))).await;
    assert_eq!(status, 400);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn rewind_redrive_purge_and_delete_over_http(pool: PgPool) {
    let app = app(pool.clone()).await;
    call(&app, "PUT", "/api/queues/dead", Some(json!({}))).await;
    let (status, body) = call(
        &app,
        "PUT",
        "/api/queues/main",
        Some(json!({"max_receive_count": 1, "dead_letter_queue": "dead"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, sent) = call(
        &app,
        "POST",
        "/api/queues/main/messages",
        Some(json!({"messages":[{"body":"a"}]})),
    )
    .await;
    let id = sent["ids"][0].clone();

    // Received once, lock expires, next receive dead-letters it.
    call(
        &app,
        "POST",
        "/api/queues/main/receive",
        Some(json!({"lock": 30})),
    )
    .await;
    expire_leases(&pool).await;
    let (_, got) = call(&app, "POST", "/api/queues/main/receive", Some(json!({}))).await;
    assert_eq!(got["messages"], json!([]));
    let (_, stats) = call(&app, "GET", "/api/queues/main", None).await;
    assert_eq!(stats["stats"]["dead_lettered"], 1);

    let (status, moved) = call(&app, "POST", "/api/queues/main/redrive", None).await;
    assert_eq!((status.as_u16(), moved["moved"].clone()), (200, json!(1)));
    let (_, got) = call(&app, "POST", "/api/queues/main/receive", Some(json!({}))).await;
    let receipt = got["messages"][0]["receipt"].clone();
    call(
        &app,
        "POST",
        "/api/queues/main/delete",
        Some(json!({"receipts":[receipt]})),
    )
    .await;

    let (status, rewound) = call(
        &app,
        "POST",
        "/api/queues/main/rewind",
        Some(json!({"to_id": id})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), rewound["restored"].clone()),
        (200, json!(1))
    );
    let (_, purged) = call(&app, "POST", "/api/queues/main/purge", None).await;
    assert_eq!(purged["purged"], 1);

    let (status, _) = call(&app, "DELETE", "/api/queues/dead", None).await;
    assert_eq!(status, 400, "still the dead letter queue of `main`");
    let (status, _) = call(&app, "DELETE", "/api/queues/main", None).await;
    assert_eq!(status, 200);
    let (_, list) = call(&app, "GET", "/api/queues", None).await;
    let names: Vec<_> = list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].clone())
        .collect();
    assert!(!names.contains(&json!("main")));
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn receive_with_wait_returns_when_a_message_arrives(pool: PgPool) {
    let app = app(pool).await;
    call(&app, "PUT", "/api/queues/w", Some(json!({}))).await;
    let receiver = {
        let (client, url) = (app.client.clone(), app.admin_url("/api/queues/w/receive"));
        tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"wait": 20}))
                .send()
                .await
                .unwrap();
            let start = std::time::Instant::now();
            let body: Value = res.json().await.unwrap();
            (body, start)
        })
    };
    let sent_at = std::time::Instant::now();
    call(
        &app,
        "POST",
        "/api/queues/w/messages",
        Some(json!({"messages":[{"body":"hi"}]})),
    )
    .await;
    let (body, _) = receiver.await.unwrap();
    assert_eq!(body["messages"][0]["body"], "hi");
    assert!(sent_at.elapsed() < std::time::Duration::from_secs(10));
}
