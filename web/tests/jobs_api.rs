//! Jobs API behaviour over HTTP, including bad input.

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{
    app_with, assert_error, assert_needs_token, count, expect_json, first_output, header, image_id,
    photo, png_bomb, spawn_app, spawn_worker, thumbnail,
};

fn thumb() -> Value {
    thumbnail("thumb", 64)
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn non_image_is_rejected_and_the_job_survives(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(thumb()).await;

    let text = b"just some text, not a photo".to_vec();
    let body = expect_json(app.upload(&job, &[("notes.txt", text)]).await, 400).await;
    assert_eq!(body["errors"][0]["name"], "notes.txt");
    assert_error(&body, &["not a supported image"]);

    // The same job still takes a good file, alongside a bad one in one request.
    let files = [
        ("rocket.jpg", photo("rocket.jpg")),
        ("bad.jpg", b"\xff\xd8\xffnope".to_vec()),
    ];
    let body = expect_json(app.upload(&job, &files).await, 201).await;
    assert_eq!(count(&body["images"]), 1);
    assert_eq!(body["errors"][0]["name"], "bad.jpg");

    let status = app.job_status(&job).await;
    assert_eq!(status["counts"]["total"], 1);
    assert_eq!(status["state"], "pending");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn upload_enqueues_one_request_per_image_and_recipe(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app
        .create_job(json!([
            {"name":"a","ops":[{"op":"thumbnail","width":64,"height":64}]},
            {"name":"b","ops":[{"op":"flip","axis":"vertical"}]}
        ]))
        .await;
    let files = [
        ("a.png", photo("chelsea.png")),
        ("b.jpg", photo("rocket.jpg")),
    ];
    assert_eq!(app.upload(&job, &files).await.status(), 201);
    let queued = support::scalar(
        &pool,
        "select coalesce(sum(cardinality(m.ids)), 0)::int8 from queue_messages m join queue_queues q on q.id = m.queue_id
         where q.name = 'darkroom.requests'",
    )
    .await;
    assert_eq!(queued, 4);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn wrong_or_missing_token_is_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = assert_needs_token(&app, thumb(), "").await;
    assert_eq!(app.job_get(&job, "").await.status(), 200);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn invalid_recipe_is_a_400_naming_op_and_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    let cases = [
        (
            json!([{"name":"t","ops":[{"op":"thumbnail","width":0,"height":10}]}]),
            &["thumbnail", "width"][..],
        ),
        (
            json!([{"name":"t","ops":[{"op":"sparkle"}]}]),
            &["unknown op `sparkle`"][..],
        ),
    ];
    for (recipes, words) in cases {
        let (status, body) = app.create(recipes).await;
        assert_eq!(status, 400, "{body}");
        assert_error(&body, words);
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn upload_without_files_is_a_400(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app.create_job(thumb()).await;
    let res = app.upload(&job, &[]).await;
    assert_eq!(res.status(), 400);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn healthz_answers_when_postgres_and_s3_do(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn root_serves_the_upload_page(pool: PgPool) {
    let app = spawn_app(pool).await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"type="file""#) && html.contains(r#"src="/assets/app.js""#));
    let script = app.get_text("/assets/app.js").await;
    assert!(script.contains("from \"./api.js\""));
    let api = app.get_text("/assets/api.js").await;
    assert!(api.contains("/api/jobs"));
    assert_eq!(app.get("/assets/nope.js").await.status(), 404);
    for text in [&html, &script, &api] {
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "the page must not load anything from elsewhere"
        );
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn openapi_spec_describes_every_route(pool: PgPool) {
    let app = spawn_app(pool).await;
    let spec = expect_json(app.admin_get("/api/openapi.json", None).await, 200).await;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    let expected = [
        ("/api/jobs", "post"),
        ("/api/jobs/{id}", "get"),
        ("/api/jobs/{id}/images", "post"),
        ("/api/jobs/{id}/events", "get"),
        ("/api/jobs/{id}/links", "post"),
        ("/api/jobs/{id}/archive", "get"),
        ("/api/jobs/{id}/images/{image_id}/original", "get"),
        ("/api/jobs/{id}/images/{image_id}/{recipe}", "get"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/api/queues", "get"),
        ("/api/queues/{name}", "get"),
        ("/api/queues/{name}", "put"),
        ("/api/queues/{name}", "delete"),
        ("/api/queues/{name}/messages", "post"),
        ("/api/queues/{name}/receive", "post"),
        ("/api/queues/{name}/delete", "post"),
        ("/api/queues/{name}/visibility", "post"),
        ("/api/queues/{name}/rewind", "post"),
        ("/api/queues/{name}/redrive", "post"),
        ("/api/queues/{name}/purge", "post"),
        ("/api/topics", "get"),
        ("/api/topics/{name}", "put"),
        ("/api/topics/{name}", "delete"),
        ("/api/topics/{name}/publish", "post"),
        ("/api/topics/{name}/subscriptions", "get"),
        ("/api/topics/{name}/subscriptions/{subscription}", "put"),
        ("/api/topics/{name}/subscriptions/{subscription}", "delete"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is missing from the spec"
        );
    }
    // Every $ref resolves to a schema the spec defines.
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let text = spec.to_string();
    for r in text.split("\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
    let security = spec["components"]["securitySchemes"].as_object().unwrap();
    for scheme in ["job_token", "signed_link", "admin_token"] {
        assert!(security.contains_key(scheme), "{scheme} missing");
    }
    // Tokens in query strings leak into logs and Referer headers; signed links replaced them.
    assert!(!security.contains_key("job_token_query"));
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        security.contains_key(scheme),
                        "{method} {path} names undefined scheme {scheme}"
                    );
                }
            }
        }
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn unknown_path_is_a_404_not_a_queue_api_token_error(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in ["/favicon.ico", "/api/nope", "/api/jobs/x/y/z/w"] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn empty_file_and_bomb_are_refused_and_truncated_jpeg_fails_clearly(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let _worker = spawn_worker(&pool, &app.storage_args);
    let job = app.create_job(thumb()).await;
    let jpeg = photo("rocket.jpg");
    let files = [
        ("empty.jpg", Vec::new()),
        ("bomb.png", png_bomb(100_000, 100_000)),
        ("cut.jpg", jpeg[..jpeg.len() / 2].to_vec()),
    ];
    let body = expect_json(app.upload(&job, &files).await, 201).await;
    let errors: Vec<(&str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(errors.len(), 2, "{body}");
    assert_eq!(errors[0].0, "empty.jpg");
    assert!(errors[0].1.contains("empty"), "{}", errors[0].1);
    assert_eq!(errors[1].0, "bomb.png");
    assert!(errors[1].1.contains("100000"), "{}", errors[1].1);

    // The header of the truncated JPEG is fine; decoding finds the cut.
    let status = app
        .wait_done(&job, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(
        status["counts"],
        json!({"total": 1, "done": 0, "failed": 1})
    );
    assert_eq!(status["images"][0]["name"], "cut.jpg");
    assert_error(first_output(&status), &["truncated"]);
}

/// A PNG of noise, which does not compress: `width`×`height`×3 bytes and more.
fn noise_png(width: u32, height: u32) -> Vec<u8> {
    use rand::Rng;
    let mut rng = rand::rng();
    let pixels: Vec<u8> = (0..width * height * 3).map(|_| rng.random()).collect();
    let img = image::RgbImage::from_raw(width, height, pixels).unwrap();
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn upload_larger_than_a_part_is_stored_intact_and_over_limit_is_refused(pool: PgPool) {
    let app = app_with(pool, |s| s.limits.max_bytes = 20 * 1024 * 1024).await;
    let job = app.create_job(thumb()).await;
    // Over one 8 MiB part: goes up as a multipart upload of two parts.
    let big = noise_png(2600, 1600);
    assert!(big.len() > 9 * 1024 * 1024, "{}", big.len());
    let too_big = noise_png(3000, 2400);
    assert!(too_big.len() > 20 * 1024 * 1024, "{}", too_big.len());
    let files = [("big.png", big.clone()), ("huge.png", too_big)];
    let body = expect_json(app.upload(&job, &files).await, 201).await;
    assert_eq!(body["errors"][0]["name"], "huge.png");
    assert_error(&body["errors"][0], &["over the limit of 20971520 bytes"]);
    let res = app.original(&job, image_id(&body)).await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap() == big, "stored bytes differ");
    assert_eq!(app.job_status(&job).await["counts"]["total"], 1);
}
