//! Hardened defaults: what the public listener serves, and how.

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{TestApp, photo, spawn_app, spawn_app_with};
use web::Settings;

const TOKEN: &str = "hardening-test-token-7c1e9a4f2b8d";

async fn app_with_admin(pool: PgPool) -> TestApp {
    spawn_app_with(
        pool,
        Settings {
            admin_token: Some(queue::AdminToken::new(TOKEN).unwrap()),
            ..Settings::default()
        },
    )
    .await
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn queue_api_and_metrics_are_only_on_the_admin_listener(pool: PgPool) {
    let app = app_with_admin(pool).await;
    for path in ["/api/queues", "/api/queues/darkroom.requests", "/metrics"] {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "public {path}");
        let res = app
            .client
            .get(app.admin_url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "admin {path}");
    }
    // The public description leaves out what the public port does not serve.
    let spec: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
        let res = app.client.get(app.url(path)).send().await.unwrap();
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
    let html = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<style>"),
        "{html}"
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn originals_are_served_as_attachments(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app
        .create_job(json!([{"name":"t","ops":[{"op":"flip","axis":"vertical"}]}]))
        .await;
    let body: Value = app
        .upload(&job, &[("rocket.jpg", photo("rocket.jpg"))])
        .await
        .json()
        .await
        .unwrap();
    let image = body["images"][0]["id"].as_str().unwrap();
    let res = app
        .client
        .get(app.url(&format!("/api/jobs/{}/images/{image}/original", job.id)))
        .bearer_auth(&job.token)
        .send()
        .await
        .unwrap();
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
    let job = app
        .create_job(json!([{"name":"t","ops":[{"op":"flip","axis":"vertical"}]}]))
        .await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(photo("rocket.jpg")).file_name("rocket.jpg"),
    );
    let res = app
        .client
        .post(app.url(&format!("/api/jobs/{}/images?token={}", job.id, job.token)))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Authorization header"),
        "{body}"
    );
    // Reading with it in the URL (links, event streams) still works.
    let res = app
        .client
        .get(app.url(&format!("/api/jobs/{}?token={}", job.id, job.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn shown_file_names_lose_unicode_format_characters(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app
        .create_job(json!([{"name":"t","ops":[{"op":"flip","axis":"vertical"}]}]))
        .await;
    let res = app
        .upload(&job, &[("photo\u{202e}gpj.exe", photo("rocket.jpg"))])
        .await;
    assert_eq!(res.status(), 201);
    let status = app.job_status(&job).await;
    assert_eq!(status["images"][0]["name"], "photogpj.exe");
}
