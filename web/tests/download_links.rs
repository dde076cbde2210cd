//! Signed links: what plain URLs (`<img>`, downloads, `EventSource`) carry
//! instead of the job's token.

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{Job, TestApp, app_with, assert_error, expect_json, flip, photo};
use web::links::{LinkKey, unix_now};

const SECRET: &str = "download-links-test-secret-0123456789abcdef";

async fn app(pool: PgPool) -> TestApp {
    app_with(pool, |s| {
        s.link_key = LinkKey::from_secret(SECRET).unwrap();
    })
    .await
}

/// The links the API signs for `paths` of `job`, with the job's token.
async fn sign(app: &TestApp, job: &Job, paths: &[String]) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/jobs/{}/links", job.id)))
        .bearer_auth(&job.token)
        .json(&json!({ "paths": paths }))
        .send()
        .await
        .unwrap()
}

async fn signed(app: &TestApp, job: &Job, path: String) -> String {
    let body = expect_json(sign(app, job, &[path]).await, 200).await;
    body["links"][0].as_str().unwrap().to_owned()
}

/// A job holding one uploaded photo, and the path of its original.
async fn job_with_original(app: &TestApp) -> (Job, String) {
    let job = app.create_job(flip("f")).await;
    let image = app.upload_accepted(&job, "rocket.jpg").await;
    let path = format!("/api/jobs/{}/images/{image}/original", job.id);
    (job, path)
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_signed_link_fetches_the_file_without_the_token(pool: PgPool) {
    let app = app(pool).await;
    let (job, path) = job_with_original(&app).await;
    let link = signed(&app, &job, path).await;
    assert!(!link.contains(&job.token), "{link}");
    let res = app.get(&link).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap(), photo("rocket.jpg"));
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_signed_link_opens_the_progress_stream(pool: PgPool) {
    let app = app(pool).await;
    let job = app.create_job(flip("f")).await;
    let link = signed(&app, &job, format!("/api/jobs/{}/events", job.id)).await;
    let res = app.get(&link).await;
    assert_eq!(res.status(), 200);
    assert!(support::header(&res, "content-type").starts_with("text/event-stream"));
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn an_expired_link_is_refused(pool: PgPool) {
    let app = app(pool).await;
    let (_, path) = job_with_original(&app).await;
    let key = LinkKey::from_secret(SECRET).unwrap();
    assert_eq!(
        app.get(&key.link(&path, unix_now() + 60)).await.status(),
        200
    );
    assert_eq!(
        app.get(&key.link(&path, unix_now() - 1)).await.status(),
        404
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_tampered_link_is_refused(pool: PgPool) {
    let app = app(pool).await;
    let (job, path) = job_with_original(&app).await;
    let (other_job, other_path) = job_with_original(&app).await;
    let link = signed(&app, &job, path.clone()).await;
    let query = link.split_once('?').unwrap().1;
    let (expiry, sig) = query.split_once('&').unwrap();
    let expires: u64 = expiry.strip_prefix("expires=").unwrap().parse().unwrap();
    let second_image = app.upload_accepted(&job, "chelsea.png").await;
    let tampered = [
        // Another file of the same job.
        format!(
            "/api/jobs/{}/images/{second_image}/original?{query}",
            job.id
        ),
        format!("/api/jobs/{}/archive?{query}", job.id),
        // The same file's place in another job.
        format!("{other_path}?{query}"),
        path.replace(&job.id, &other_job.id) + "?" + query,
        // A later expiry, or another signature.
        format!("{path}?expires={}&{sig}", expires + 3600),
        format!("{path}?{expiry}&sig={}", "0".repeat(64)),
        format!("{path}?{expiry}"),
    ];
    for url in tampered {
        assert_eq!(app.get(&url).await.status(), 404, "{url}");
    }
    assert_eq!(app.get(&link).await.status(), 200);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_link_signed_by_another_key_is_refused(pool: PgPool) {
    let app = app(pool).await;
    let (_, path) = job_with_original(&app).await;
    let stranger = LinkKey::from_secret(&SECRET.replace('0', "1")).unwrap();
    let res = app.get(&stranger.link(&path, unix_now() + 60)).await;
    assert_eq!(res.status(), 404);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn links_are_signed_only_for_the_jobs_files_and_stream(pool: PgPool) {
    let app = app(pool).await;
    let (job, _) = job_with_original(&app).await;
    let (other, other_path) = job_with_original(&app).await;
    let refused = [
        other_path,
        format!("/api/jobs/{}", job.id),
        format!("/api/jobs/{}/images", job.id),
        format!("/api/jobs/{}/archive", other.id),
    ];
    for path in refused {
        let body = expect_json(sign(&app, &job, std::slice::from_ref(&path)).await, 400).await;
        assert_error(&body, &["no download or progress stream of this job"]);
    }
    // Signing takes the token itself, never a link or nothing.
    let res = app
        .client
        .post(app.url(&format!("/api/jobs/{}/links", job.id)))
        .json(&json!({ "paths": [format!("/api/jobs/{}/archive", job.id)] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_signed_link_never_opens_a_request_that_changes_something(pool: PgPool) {
    let app = app(pool).await;
    let job = app.create_job(flip("f")).await;
    let key = LinkKey::from_secret(SECRET).unwrap();
    let link = key.link(&format!("/api/jobs/{}/images", job.id), unix_now() + 60);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(photo("rocket.jpg")).file_name("rocket.jpg"),
    );
    let res = app.client.post(app.url(&link)).multipart(form).send().await;
    let body: Value = expect_json(res.unwrap(), 400).await;
    assert_error(&body, &["Authorization header"]);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_token_in_the_url_no_longer_opens_a_job(pool: PgPool) {
    let app = app(pool).await;
    let (job, path) = job_with_original(&app).await;
    for path in [format!("/api/jobs/{}", job.id), path] {
        let res = app.get(&format!("{path}?token={}", job.token)).await;
        assert_eq!(res.status(), 404, "{path}");
    }
}
