//! Limits that keep one client from taking the service down: recipe cost and
//! output size, request size, per-job quota, per-client rates and streams.

mod support;

use std::time::{Duration, Instant};

use axum::http::HeaderName;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{photo, spawn_app, spawn_app_with};
use web::Settings;
use web::rate::RateSettings;

async fn create(app: &support::TestApp, recipes: Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/jobs"))
        .json(&json!({ "recipes": recipes }))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn resize_past_the_pixel_cap_is_refused_at_job_creation(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (status, body) = create(
        &app,
        json!([{"name":"huge","ops":[{"op":"resize","width":16384,"height":16384}]}]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("recipes[0] (huge)") && error.contains("DARKROOM_MAX_PIXELS"),
        "{error}"
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn recipe_over_the_cost_budget_is_refused_with_its_cost(pool: PgPool) {
    let app = spawn_app(pool).await;
    let blurs: Vec<Value> = (0..31)
        .map(|_| json!({"op":"blur","sigma":100.0}))
        .collect();
    let (status, body) = create(&app, json!([{"name":"heavy","ops": blurs}])).await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("DARKROOM_MAX_RECIPE_COST") && error.contains("passes"),
        "{error}"
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn heavy_ops_after_a_thumbnail_are_within_budget(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut ops = vec![json!({"op":"thumbnail","width":256,"height":256})];
    ops.extend((0..31).map(|_| json!({"op":"blur","sigma":100.0})));
    let (status, body) = create(&app, json!([{"name":"small","ops": ops}])).await;
    assert_eq!(status, 201, "{body}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn original_is_a_reserved_recipe_name(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (status, body) = create(
        &app,
        json!([{"name":"original","ops":[{"op":"flip","axis":"vertical"}]}]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("reserved"),
        "{body}"
    );
}

fn flip() -> Value {
    json!([{"name":"f","ops":[{"op":"flip","axis":"vertical"}]}])
}

fn settings() -> Settings {
    Settings::default()
}

async fn originals(app: &support::TestApp, job: &support::Job) -> usize {
    app.storage
        .list(&format!("jobs/{}/originals/", job.id))
        .await
        .unwrap()
        .len()
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn request_over_its_size_is_cut_with_413_and_keeps_the_files_before(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        Settings {
            max_request_bytes: 200_000,
            ..settings()
        },
    )
    .await;
    let job = app.create_job(flip()).await;
    // 112 kB fits; the 240 kB second file crosses the 200 kB cap.
    let res = app
        .upload(
            &job,
            &[
                ("rocket.jpg", photo("rocket.jpg")),
                ("chelsea.png", photo("chelsea.png")),
                ("coffee.png", photo("coffee.png")),
            ],
        )
        .await;
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["images"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["images"][0]["name"], "rocket.jpg");
    // The cut is named when it falls inside a file; between two files there
    // is nothing to name.
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e["name"] == "chelsea.png"), "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("DARKROOM_MAX_REQUEST_BYTES"),
        "{body}"
    );
    assert_eq!(app.job_status(&job).await["counts"]["total"], 1);
    // The file cut in the middle left nothing behind.
    assert_eq!(originals(&app, &job).await, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn files_past_the_jobs_image_quota_are_refused(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        Settings {
            max_images_per_job: 2,
            ..settings()
        },
    )
    .await;
    let job = app.create_job(flip()).await;
    let three: Vec<_> = ["a.jpg", "b.jpg", "c.jpg"]
        .iter()
        .map(|n| (*n, photo("rocket.jpg")))
        .collect();
    let res = app.upload(&job, &three).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["images"].as_array().unwrap().len(), 2);
    assert_eq!(body["errors"][0]["name"], "c.jpg");
    assert!(
        body["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("DARKROOM_MAX_IMAGES_PER_JOB"),
        "{body}"
    );
    let res = app.upload(&job, &three[..1]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(originals(&app, &job).await, 2);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn concurrent_uploads_never_exceed_the_quota(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        Settings {
            max_images_per_job: 3,
            ..settings()
        },
    )
    .await;
    let job = app.create_job(flip()).await;
    let files: Vec<_> = ["a.jpg", "b.jpg"]
        .iter()
        .map(|n| (*n, photo("rocket.jpg")))
        .collect();
    let uploads: Vec<_> = (0..4).map(|_| app.upload(&job, &files)).collect();
    futures::future::join_all(uploads).await;
    assert_eq!(app.job_status(&job).await["counts"]["total"], 3);
    assert_eq!(originals(&app, &job).await, 3);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn job_creation_over_the_clients_rate_is_429_with_retry_after(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        Settings {
            rates: RateSettings {
                jobs_per_minute: 2,
                client_ip_header: Some(HeaderName::from_static("x-forwarded-for")),
                ..RateSettings::default()
            },
            ..settings()
        },
    )
    .await;
    let create = |client: &'static str| {
        app.client
            .post(app.url("/api/jobs"))
            .header("x-forwarded-for", format!("10.0.0.1, {client}"))
            .json(&json!({ "recipes": flip() }))
            .send()
    };
    assert_eq!(create("192.0.2.1").await.unwrap().status(), 201);
    assert_eq!(create("192.0.2.1").await.unwrap().status(), 201);
    let res = create("192.0.2.1").await.unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("try again in"),
        "{body}"
    );
    // Another client, told apart by the proxy's header, is not held back.
    assert_eq!(create("192.0.2.2").await.unwrap().status(), 201);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn upload_requests_over_the_clients_rate_are_429(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        Settings {
            rates: RateSettings {
                uploads_per_minute: 1,
                ..RateSettings::default()
            },
            ..settings()
        },
    )
    .await;
    let job = app.create_job(flip()).await;
    let one = [("rocket.jpg", photo("rocket.jpg"))];
    assert_eq!(app.upload(&job, &one).await.status(), 201);
    let res = app.upload(&job, &one).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(originals(&app, &job).await, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn work_over_the_clients_rate_cuts_the_upload_with_429(pool: PgPool) {
    // Flipping rocket.jpg (640×427) is charged about 16 megapixel passes:
    // 4 of work, 12 for the message.
    let app = spawn_app_with(
        pool,
        Settings {
            rates: RateSettings {
                work_per_minute: 20,
                ..RateSettings::default()
            },
            ..settings()
        },
    )
    .await;
    let job = app.create_job(flip()).await;
    let res = app
        .upload(
            &job,
            &[
                ("one.jpg", photo("rocket.jpg")),
                ("two.jpg", photo("rocket.jpg")),
                ("three.jpg", photo("rocket.jpg")),
            ],
        )
        .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["images"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["errors"][0]["name"], "two.jpg", "{body}");
    assert_eq!(originals(&app, &job).await, 1);
    // A file whose work alone is more than a minute's allowance is refused
    // for good, with the reason.
    let big = app
        .create_job(json!([{"name":"big","ops":[{"op":"resize","width":4000,"height":4000}]}]))
        .await;
    let res = app
        .upload(&big, &[("rocket.jpg", photo("rocket.jpg"))])
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("DARKROOM_RATE_LIMIT_WORK"),
        "{body}"
    );
}

/// Opens a progress stream and returns the response (the stream stays open
/// while it is held).
async fn stream(app: &support::TestApp, job: &support::Job) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/jobs/{}/events", job.id)))
        .bearer_auth(&job.token)
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn progress_streams_are_capped_per_job_and_freed_when_closed(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        Settings {
            max_streams_per_job: 2,
            ..settings()
        },
    )
    .await;
    let job = app.create_job(flip()).await;
    let first = stream(&app, &job).await;
    let second = stream(&app, &job).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = stream(&app, &job).await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    // Another job has places of its own.
    let other = app.create_job(flip()).await;
    assert_eq!(stream(&app, &other).await.status(), 200);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = stream(&app, &job).await;
        if again.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "a closed stream kept its place");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn progress_stream_ends_once_the_job_is_done(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(flip()).await;
    app.upload(&job, &[("rocket.jpg", photo("rocket.jpg"))])
        .await;
    sqlx::query(
        "update outputs set state = 'failed', error = 'x', event = nextval('output_events')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), stream(&app, &job).await.text())
        .await
        .expect("the stream of a done job ends")
        .unwrap();
    assert!(body.contains("event: output"), "{body}");
    assert!(body.contains(r#""state":"done""#), "{body}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn job_status_pages_through_images(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app.create_job(flip()).await;
    let five: Vec<_> = (0..5)
        .map(|i| (["a", "b", "c", "d", "e"][i], photo("rocket.jpg")))
        .collect();
    assert_eq!(app.upload(&job, &five).await.status(), 201);
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("/api/jobs/{}?limit=2", job.id);
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page: Value = app
            .client
            .get(app.url(&url))
            .bearer_auth(&job.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        assert_eq!(page["counts"]["total"], 5, "counts cover the whole job");
        names.extend(
            page["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    let res = app
        .client
        .get(app.url(&format!("/api/jobs/{}?limit=5000", job.id)))
        .bearer_auth(&job.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn requests_of_any_kind_over_the_clients_rate_are_429(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        Settings {
            rates: RateSettings {
                requests_per_second: 2,
                ..RateSettings::default()
            },
            ..settings()
        },
    )
    .await;
    // A burst of twice the rate passes; the next requests, of whatever kind,
    // are held back until the bucket refills.
    let mut statuses = Vec::new();
    for path in ["/", "/healthz", "/api/jobs/x", "/nope", "/", "/healthz"] {
        statuses.push(
            app.client
                .get(app.url(path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..4], [200, 200, 404, 404], "{statuses:?}");
    assert!(statuses[4..].contains(&429), "{statuses:?}");
    // A client over its rate waits for its 429 until its bucket has room:
    // one that fires as fast as it is answered gets few answers.
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(2) {
        app.client.get(app.url("/nope")).send().await.unwrap();
        answered += 1;
    }
    assert!(answered <= 20, "{answered} answers in 2 s");
}
