//! Limits that keep one client from taking the service down: recipe cost and
//! output size, request size, per-job quota and streams, status pages. (The
//! per-client rates are in rates.rs.)

mod support;

use std::time::Duration;

use axum::http::HeaderName;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{
    Job, app_and_job, app_with, assert_error, copies, count, expect_json, expect_retry, flip,
    photos, poll, spawn_app,
};

/// Asks for a job with `recipes`, expecting a 400 whose error names `words`.
async fn assert_refused(pool: PgPool, recipes: Value, words: &[&str]) {
    let (status, body) = spawn_app(pool).await.create(recipes).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, words);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn resize_past_the_pixel_cap_is_refused_at_job_creation(pool: PgPool) {
    let huge = json!([{"name":"huge","ops":[{"op":"resize","width":16384,"height":16384}]}]);
    assert_refused(pool, huge, &["recipes[0] (huge)", "DARKROOM_MAX_PIXELS"]).await;
}

fn blurs() -> impl Iterator<Item = Value> {
    (0..31).map(|_| json!({"op":"blur","sigma":100.0}))
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn recipe_over_the_cost_budget_is_refused_with_its_cost(pool: PgPool) {
    let heavy = json!([{"name":"heavy","ops": blurs().collect::<Vec<_>>()}]);
    assert_refused(pool, heavy, &["DARKROOM_MAX_RECIPE_COST", "passes"]).await;
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn heavy_ops_after_a_thumbnail_are_within_budget(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut ops = vec![json!({"op":"thumbnail","width":256,"height":256})];
    ops.extend(blurs());
    let (status, body) = app.create(json!([{"name":"small","ops": ops}])).await;
    assert_eq!(status, 201, "{body}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn original_is_a_reserved_recipe_name(pool: PgPool) {
    assert_refused(pool, flip("original"), &["reserved"]).await;
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn request_over_its_size_is_cut_with_413_and_keeps_the_files_before(pool: PgPool) {
    let (app, job) = app_and_job(pool, |s| s.max_request_bytes = 200_000).await;
    // 112 kB fits; the 240 kB second file crosses the 200 kB cap.
    let files = photos(&["rocket.jpg", "chelsea.png", "coffee.png"]);
    let body = expect_json(app.upload(&job, &files).await, 413).await;
    assert_eq!(count(&body["images"]), 1, "{body}");
    assert_eq!(body["images"][0]["name"], "rocket.jpg");
    // The cut is named when it falls inside a file; between two files there
    // is nothing to name.
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e["name"] == "chelsea.png"), "{body}");
    assert_error(&body, &["DARKROOM_MAX_REQUEST_BYTES"]);
    assert_eq!(app.job_status(&job).await["counts"]["total"], 1);
    // The file cut in the middle left nothing behind.
    assert_eq!(app.originals(&job).await, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn files_past_the_jobs_image_quota_are_refused(pool: PgPool) {
    let (app, job) = app_and_job(pool, |s| s.max_images_per_job = 2).await;
    let three = copies(&["a.jpg", "b.jpg", "c.jpg"], "rocket.jpg");
    let body = expect_json(app.upload(&job, &three).await, 201).await;
    assert_eq!(count(&body["images"]), 2);
    assert_eq!(body["errors"][0]["name"], "c.jpg");
    assert_error(&body["errors"][0], &["DARKROOM_MAX_IMAGES_PER_JOB"]);
    let res = app.upload(&job, &three[..1]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.originals(&job).await, 2);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn concurrent_uploads_never_exceed_the_quota(pool: PgPool) {
    let (app, job) = app_and_job(pool, |s| s.max_images_per_job = 3).await;
    let files = copies(&["a.jpg", "b.jpg"], "rocket.jpg");
    let uploads: Vec<_> = (0..4).map(|_| app.upload(&job, &files)).collect();
    futures::future::join_all(uploads).await;
    assert_eq!(app.job_status(&job).await["counts"]["total"], 3);
    assert_eq!(app.originals(&job).await, 3);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn progress_streams_are_capped_per_job_and_freed_when_closed(pool: PgPool) {
    let (app, job) = app_and_job(pool, |s| s.max_streams_per_job = 2).await;
    // A stream stays open while its response is held.
    let first = app.job_get(&job, "/events").await;
    let second = app.job_get(&job, "/events").await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    expect_retry(app.job_get(&job, "/events").await, 429).await;
    // Another job has places of its own.
    let other = app.create_job(flip("f")).await;
    assert_eq!(app.job_get(&other, "/events").await.status(), 200);
    drop(first);
    poll(Duration::from_secs(10), async || {
        match app.job_get(&job, "/events").await.status().as_u16() {
            200 => Ok(()),
            status => Err(format!("a closed stream kept its place: {status}")),
        }
    })
    .await;
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn progress_stream_ends_once_the_job_is_done(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(flip("f")).await;
    app.upload_one(&job, "rocket.jpg").await;
    support::sql(
        &pool,
        "update outputs set state = 'failed', error = 'x', event = nextval('output_events')",
    )
    .await;
    let stream = app.job_get(&job, "/events").await;
    let body = tokio::time::timeout(Duration::from_secs(10), stream.text())
        .await
        .expect("the stream of a done job ends")
        .unwrap();
    assert!(body.contains("event: output"), "{body}");
    assert!(body.contains(r#""state":"done""#), "{body}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn progress_streams_are_capped_per_client(pool: PgPool) {
    let app = app_with(pool, |s| {
        s.max_streams_per_client = 2;
        s.rates.client_ip_header = Some(HeaderName::from_static("x-forwarded-for"));
    })
    .await;
    let open = async |job: &Job, client: &str| {
        let url = app.url(&format!("/api/jobs/{}/events", job.id));
        let request = app.client.get(url).bearer_auth(&job.token);
        request
            .header("x-forwarded-for", client)
            .send()
            .await
            .unwrap()
    };
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(app.create_job(flip("f")).await);
    }
    // Held open: each on its own job, all from one address.
    let first = open(&jobs[0], "192.0.2.1").await;
    let second = open(&jobs[1], "192.0.2.1").await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open(&jobs[2], "192.0.2.1").await;
    // A stream let through would never end: its status says enough.
    assert_eq!(third.status().as_u16(), 429);
    let (_, body) = expect_retry(third, 429).await;
    assert_error(&body, &["DARKROOM_MAX_STREAMS_PER_CLIENT"]);
    assert_eq!(open(&jobs[2], "192.0.2.2").await.status(), 200);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_progress_stream_ends_when_its_job_expires(pool: PgPool) {
    let (app, job) = app_and_job(pool.clone(), |_| ()).await;
    // Pending for good: no worker runs.
    app.upload_one(&job, "rocket.jpg").await;
    support::sql(
        &pool,
        "update jobs set expires_at = now() + interval '1 second'",
    )
    .await;
    let stream = app.job_get(&job, "/events").await;
    assert_eq!(stream.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(10), stream.text())
        .await
        .expect("the stream of an expired job ends")
        .unwrap();
    assert!(body.contains(r#""state":"pending""#), "{body}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_job_that_gets_no_image_expires_soon_and_its_first_upload_keeps_it(pool: PgPool) {
    let app = app_with(pool, |s| {
        s.empty_job_ttl = Duration::from_secs(3600);
        s.job_ttl = Duration::from_secs(7 * 24 * 3600);
    })
    .await;
    let expiry = |body: &Value| {
        let at = body["expires_at"].as_str().expect("expires_at").parse();
        let at: chrono::DateTime<chrono::Utc> = at.unwrap();
        (at - chrono::Utc::now()).num_minutes()
    };
    let (_, created) = app.create(flip("f")).await;
    assert!((55..=60).contains(&expiry(&created)), "{created}");
    let job = Job::from_created(&created);
    app.upload_accepted(&job, "rocket.jpg").await;
    let week = 7 * 24 * 60;
    let left = expiry(&app.job_status(&job).await);
    assert!(
        (week - 5..=week).contains(&left),
        "{left} minutes left after the first upload"
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn job_status_pages_through_images(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app.create_job(flip("f")).await;
    let five = copies(&["a", "b", "c", "d", "e"], "rocket.jpg");
    assert_eq!(app.upload(&job, &five).await.status(), 201);
    let mut names = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let page = app.job_get(&job, &format!("?limit=2{after}")).await;
        let page = expect_json(page, 200).await;
        pages += 1;
        assert_eq!(page["counts"]["total"], 5, "counts cover the whole job");
        let images = page["images"].as_array().unwrap();
        names.extend(
            images
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    let res = app.job_get(&job, "?limit=5000").await;
    assert_eq!(res.status(), 400);
}
