//! Per-client rates: job creation, upload requests, the work uploads bring,
//! and requests of any kind. Over its rate a client is answered 429 with
//! `Retry-After`.

mod support;

use std::time::{Duration, Instant};

use axum::http::HeaderName;
use serde_json::json;
use sqlx::PgPool;
use support::{
    app_and_job, app_with, assert_error, copies, count, expect_json, expect_retry, flip, photo,
    with_metadata_segments,
};

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn job_creation_over_the_clients_rate_is_429_with_retry_after(pool: PgPool) {
    let app = app_with(pool, |s| {
        s.rates.jobs_per_minute = 2;
        s.rates.client_ip_header = Some(HeaderName::from_static("x-forwarded-for"));
    })
    .await;
    let create = async |client: &str| {
        app.client
            .post(app.url("/api/jobs"))
            .header("x-forwarded-for", format!("10.0.0.1, {client}"))
            .json(&json!({ "recipes": flip("f") }))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(create("192.0.2.1").await.status(), 201);
    assert_eq!(create("192.0.2.1").await.status(), 201);
    let (wait, body) = expect_retry(create("192.0.2.1").await, 429).await;
    assert!((1..=30).contains(&wait), "{wait}");
    assert_error(&body, &["try again in"]);
    // Another client, told apart by the proxy's header, is not held back.
    assert_eq!(create("192.0.2.2").await.status(), 201);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn upload_requests_over_the_clients_rate_are_429(pool: PgPool) {
    let (app, job) = app_and_job(pool, |s| s.rates.uploads_per_minute = 1).await;
    assert_eq!(app.upload_one(&job, "rocket.jpg").await.status(), 201);
    expect_retry(app.upload_one(&job, "rocket.jpg").await, 429).await;
    assert_eq!(app.originals(&job).await, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn work_over_the_clients_rate_cuts_the_upload_with_429(pool: PgPool) {
    // Flipping rocket.jpg (640×427) is charged about 16 megapixel passes:
    // 4 of work, 12 for the message.
    let (app, job) = app_and_job(pool, |s| s.rates.work_per_minute = 20).await;
    let three = copies(&["one.jpg", "two.jpg", "three.jpg"], "rocket.jpg");
    let (_, body) = expect_retry(app.upload(&job, &three).await, 429).await;
    assert_eq!(count(&body["images"]), 1, "{body}");
    assert_eq!(body["errors"][0]["name"], "two.jpg", "{body}");
    assert_eq!(app.originals(&job).await, 1);
    // A file whose work alone is more than a minute's allowance is refused
    // for good, with the reason.
    let big = app
        .create_job(json!([{"name":"big","ops":[{"op":"resize","width":4000,"height":4000}]}]))
        .await;
    let body = expect_json(app.upload_one(&big, "rocket.jpg").await, 400).await;
    assert_error(&body, &["DARKROOM_RATE_LIMIT_WORK"]);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_file_whose_header_follows_large_metadata_is_charged_like_its_plain_twin(pool: PgPool) {
    let (app, flips) = app_and_job(pool, |s| s.rates.work_per_minute = 20).await;
    let plain = photo("rocket.jpg");
    // Its frame header starts 128 KiB in, past the first read of a file.
    let padded = with_metadata_segments(&plain, 2);
    let big = app
        .create_job(json!([{"name":"big","ops":[{"op":"resize","width":4000,"height":4000}]}]))
        .await;
    let refusal = async |bytes: &[u8]| {
        let files = [("rocket.jpg", bytes.to_vec())];
        expect_json(app.upload(&big, &files).await, 400).await["errors"][0]["error"].clone()
    };
    assert_eq!(refusal(&padded).await, refusal(&plain).await);
    // Charged: the padded file's 16 passes leave no room for its twin's.
    let files = [("padded.jpg", padded), ("plain.jpg", plain)];
    let (_, body) = expect_retry(app.upload(&flips, &files).await, 429).await;
    assert_eq!(body["images"][0]["name"], "padded.jpg", "{body}");
    assert_eq!(body["errors"][0]["name"], "plain.jpg", "{body}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_file_whose_header_is_past_the_read_window_is_charged_as_the_largest_image(pool: PgPool) {
    // A flip of the largest image allowed (50 MP) costs about 700 passes.
    let (app, job) = app_and_job(pool, |s| s.rates.work_per_minute = 300).await;
    let unread = with_metadata_segments(&photo("rocket.jpg"), 32);
    let body = expect_json(app.upload(&job, &[("far.jpg", unread)]).await, 400).await;
    assert_error(
        &body,
        &["first 1024 KiB", "largest", "DARKROOM_RATE_LIMIT_WORK"],
    );
    assert_eq!(app.originals(&job).await, 0);
    assert_eq!(app.upload_one(&job, "rocket.jpg").await.status(), 201);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn requests_of_any_kind_over_the_clients_rate_are_429(pool: PgPool) {
    let app = app_with(pool, |s| s.rates.requests_per_second = 2).await;
    // A burst of twice the rate passes; the next requests, of whatever kind,
    // are held back until the bucket refills.
    let mut statuses = Vec::new();
    for path in ["/", "/healthz", "/api/jobs/x", "/nope", "/", "/healthz"] {
        statuses.push(app.get(path).await.status().as_u16());
    }
    assert_eq!(&statuses[..4], [200, 200, 404, 404], "{statuses:?}");
    assert!(statuses[4..].contains(&429), "{statuses:?}");
    // A client over its rate waits for its 429 until its bucket has room:
    // one that fires as fast as it is answered gets few answers.
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(2) {
        app.get("/nope").await;
        answered += 1;
    }
    assert!(answered <= 20, "{answered} answers in 2 s");
}
