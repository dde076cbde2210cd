//! Hardened defaults: what the public listener serves, and how.

mod support;

use sqlx::PgPool;
use support::{app_with_admin, assert_error, expect_json, flip, photo, spawn_app};

const TOKEN: &str = "hardening-test-token-7c1e9a4f2b8d";

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn queue_api_and_metrics_are_only_on_the_admin_listener(pool: PgPool) {
    let app = app_with_admin(pool, TOKEN).await;
    for path in ["/api/queues", "/api/queues/darkroom.requests", "/metrics"] {
        let public = app.get_as(path, TOKEN).await;
        assert_eq!(public.status(), 404, "public {path}");
        let admin = app.admin_get(path, Some(TOKEN)).await;
        assert_eq!(admin.status(), 200, "admin {path}");
    }
    // The public description leaves out what the public port does not serve.
    let spec = app.get_json("/api/openapi.json").await;
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/jobs"));
    assert!(
        !paths
            .keys()
            .any(|p| p.starts_with("/api/queues") || p == "/metrics")
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn every_response_carries_security_headers(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in ["/", "/assets/app.js", "/api/jobs/nope", "/healthz"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
    }
    // The page keeps to that policy: no inline script or style.
    let html = app.get_text("/").await;
    for inline in ["<script>", "<style>"] {
        assert!(!html.contains(inline), "{html}");
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn originals_are_served_as_attachments(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app.create_job(flip("t")).await;
    let image = app.upload_accepted(&job, "rocket.jpg").await;
    let res = app.original(&job, &image).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"rocket-original.jpg\""
    );
    assert_eq!(res.headers()["content-type"], "image/jpeg");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_token_in_the_url_is_refused_where_a_request_changes_something(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app.create_job(flip("t")).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(photo("rocket.jpg")).file_name("rocket.jpg"),
    );
    let url = app.url(&format!("/api/jobs/{}/images?token={}", job.id, job.token));
    let res = app.client.post(url).multipart(form).send().await.unwrap();
    let body = expect_json(res, 400).await;
    assert_error(&body, &["Authorization header"]);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn shown_file_names_lose_unicode_format_characters(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app.create_job(flip("t")).await;
    let res = app
        .upload(&job, &[("photo\u{202e}gpj.exe", photo("rocket.jpg"))])
        .await;
    assert_eq!(res.status(), 201);
    let status = app.job_status(&job).await;
    assert_eq!(status["images"][0]["name"], "photogpj.exe");
}
