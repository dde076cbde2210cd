//! Limits that keep one client from taking the service down: recipe cost and
//! output size, request size, per-job quota and streams, status pages. (The
//! per-client rates are in rates.rs.)

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{
    app_and_job, assert_error, copies, count, expect_json, expect_retry, flip, photos, poll,
    spawn_app,
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
