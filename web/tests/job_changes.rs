//! A job after its uploads: more recipes on its originals, a failed output
//! retried, the whole job deleted now.

mod support;

use std::time::Duration;

use common::Limits;
use common::protocol::{Outcome, Response};
use common::recipe::Recipe;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{
    Job, TestApp, app_with, assert_error, expect_json, flip, header, photo, request_stats,
    send_responses, spawn_app, spawn_worker, thumbnail,
};
use uuid::Uuid;
use web::work::Header;

impl TestApp {
    async fn post_as(&self, job: &Job, rest: &str, body: &Value) -> reqwest::Response {
        let url = self.url(&format!("/api/jobs/{}{rest}", job.id));
        let req = self.client.post(url).bearer_auth(&job.token).json(body);
        req.send().await.unwrap()
    }

    async fn add_recipes(&self, job: &Job, recipes: Value) -> reqwest::Response {
        self.post_as(job, "/recipes", &json!({ "recipes": recipes }))
            .await
    }

    async fn retry(&self, job: &Job, image: &str, recipe: &str) -> reqwest::Response {
        let rest = format!("/images/{image}/{recipe}/retry");
        self.post_as(job, &rest, &json!({})).await
    }

    async fn delete_job(&self, job: &Job, token: &str) -> reqwest::Response {
        let url = self.url(&format!("/api/jobs/{}", job.id));
        let req = self.client.delete(url).bearer_auth(token);
        req.send().await.unwrap()
    }
}

/// Every (image, recipe) of the job's status, sorted, with its state.
fn outputs(status: &Value) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = status["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|image| {
            image["outputs"].as_array().unwrap().iter().map(|o| {
                let text = |v: &Value| v.as_str().unwrap().to_owned();
                (text(&image["name"]), text(&o["recipe"]), text(&o["state"]))
            })
        })
        .collect();
    all.sort();
    all
}

/// The one recipe of a list [`flip`] or [`thumbnail`] makes.
fn one(recipes: Value) -> Value {
    recipes[0].clone()
}

fn names(body: &Value) -> Vec<&str> {
    let recipes = body["recipes"].as_array().unwrap();
    recipes
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

async fn requests_waiting(pool: &PgPool) -> i64 {
    let stats = request_stats(pool).await;
    stats.visible + stats.in_flight + stats.delayed
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn recipes_added_later_run_on_the_originals_already_uploaded(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let _worker = spawn_worker(&pool, &app.storage_args);
    let job = app.create_job(thumbnail("thumb", 64)).await;
    let files = support::photos(&["rocket.jpg", "chelsea.png"]);
    assert_eq!(app.upload(&job, &files).await.status(), 201);
    app.wait_done(&job, Duration::from_secs(60)).await;

    // The recipe it has already is not added twice; the new one runs on both.
    let asked = json!([one(thumbnail("thumb", 64)), one(flip("turned"))]);
    let body = expect_json(app.add_recipes(&job, asked.clone()).await, 201).await;
    assert_eq!(names(&body), ["thumb", "turned"]);
    assert_eq!(
        (body["queued"].as_u64(), body["waiting"].as_u64()),
        (Some(2), Some(0))
    );
    let status = app.wait_done(&job, Duration::from_secs(60)).await;
    assert_eq!(names(&status), ["thumb", "turned"]);
    let done: Vec<_> = outputs(&status)
        .into_iter()
        .map(|(n, r, s)| format!("{n} {r} {s}"))
        .collect();
    assert_eq!(
        done,
        [
            "chelsea.png thumb done",
            "chelsea.png turned done",
            "rocket.jpg thumb done",
            "rocket.jpg turned done"
        ]
    );

    // Asked again, nothing is queued; an image uploaded now gets both.
    let body = expect_json(app.add_recipes(&job, asked).await, 201).await;
    assert_eq!(body["queued"], 0);
    app.upload_accepted(&job, "coffee.png").await;
    let status = app.wait_done(&job, Duration::from_secs(60)).await;
    assert_eq!(status["counts"]["done"], 6);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_recipe_name_the_job_uses_for_other_ops_is_refused_and_nothing_changes(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(flip("f")).await;
    app.upload_accepted(&job, "rocket.jpg").await;
    let before = requests_waiting(&pool).await;

    let clash = json!([one(flip("g")), one(thumbnail("f", 64))]);
    let body = expect_json(app.add_recipes(&job, clash).await, 400).await;
    assert_error(&body, &["recipes[1].name", "`f`", "other ops"]);
    let invalid = json!([{"name": "x", "ops": [{"op": "blur", "sigma": -1}]}]);
    let body = expect_json(app.add_recipes(&job, invalid).await, 400).await;
    assert_error(&body, &["recipes[0]"]);
    let seventeen: Vec<Value> = (0..16).map(|i| one(flip(&format!("r{i}")))).collect();
    let body = expect_json(app.add_recipes(&job, json!(seventeen)).await, 400).await;
    assert_error(&body, &["at most 16", "17"]);

    assert_eq!(names(&app.job_status(&job).await), ["f"]);
    assert_eq!(requests_waiting(&pool).await, before);
    // Another job's token, or none, finds no job.
    let other = app.create_job(flip("f")).await;
    let stranger = Job {
        id: job.id.clone(),
        token: other.token,
    };
    assert_eq!(app.add_recipes(&stranger, flip("h")).await.status(), 404);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn added_recipes_are_charged_and_queue_the_rest_when_called_again(pool: PgPool) {
    // Uploads through one process; recipes added through another, whose
    // work rate pays for two images' new output and not a third's.
    let uploader = spawn_app(pool.clone()).await;
    let job = uploader.create_job(flip("f")).await;
    for name in ["rocket.jpg", "rocket.jpg", "rocket.jpg"] {
        uploader.upload_accepted(&job, name).await;
    }
    let added = one(thumbnail("small", 64));
    let recipe = Recipe::from_json(&added, "recipe").unwrap();
    let probe = common::probe::probe(&photo("rocket.jpg"), &Limits::default()).unwrap();
    let each = Header::Read(probe).work(&Limits::default(), [&recipe]);
    let rate = u32::try_from(each * 5 / 2).unwrap();
    let app = app_with(pool.clone(), |s| s.rates.work_per_minute = rate).await;

    let res = app.add_recipes(&job, json!([added.clone()])).await;
    assert!(!header(&res, "retry-after").is_empty());
    let body = expect_json(res, 429).await;
    assert_eq!(
        (body["queued"].as_u64(), body["waiting"].as_u64()),
        (Some(2), Some(1))
    );
    assert_error(&body, &["send the same call again"]);
    // The same call again queues nothing twice.
    let body = expect_json(app.add_recipes(&job, json!([added])).await, 429).await;
    assert_eq!(
        (body["queued"].as_u64(), body["waiting"].as_u64()),
        (Some(0), Some(1))
    );
    let small = "select count(*) from outputs where recipe = 'small'";
    assert_eq!(support::scalar(&pool, small).await, 2);
    assert_eq!(requests_waiting(&pool).await, 3 + 2);
}

/// Job `job`'s one image, uploaded, with its output of `recipe` failed as
/// a worker reports it.
async fn failed_output(app: &TestApp, pool: &PgPool, job: &Job, recipe: &str) -> String {
    let image = app.upload_accepted(job, "rocket.jpg").await;
    let failed = Response {
        job_id: job.id.parse().unwrap(),
        image_id: image.parse::<Uuid>().unwrap(),
        recipe: recipe.into(),
        outcome: Outcome::Failed {
            error: "image is corrupt or truncated".into(),
        },
    };
    send_responses(pool, &[failed]).await;
    support::poll(Duration::from_secs(10), async || {
        let status = app.job_status(job).await;
        match status["counts"]["failed"] == 1 {
            true => Ok(()),
            false => Err(format!("not failed yet: {status}")),
        }
    })
    .await;
    image
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_failed_output_is_queued_again_once_however_often_retried(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(flip("f")).await;
    let image = failed_output(&app, &pool, &job, "f").await;
    let before = requests_waiting(&pool).await;

    for _ in 0..3 {
        let body = expect_json(app.retry(&job, &image, "f").await, 202).await;
        assert_eq!(
            (body["recipe"].as_str(), body["state"].as_str()),
            (Some("f"), Some("queued"))
        );
    }
    assert_eq!(requests_waiting(&pool).await, before + 1);
    let status = app.job_status(&job).await;
    assert_eq!(
        outputs(&status),
        [("rocket.jpg".into(), "f".into(), "queued".into())]
    );
    assert!(status["images"][0]["outputs"][0]["error"].is_null());

    // A worker makes it this time.
    let _worker = spawn_worker(&pool, &app.storage_args);
    let status = app.wait_done(&job, Duration::from_secs(60)).await;
    assert_eq!(status["counts"]["done"], 1);
    let body = expect_json(app.retry(&job, &image, "f").await, 409).await;
    assert_error(&body, &["done", "nothing to retry"]);
    assert_eq!(app.retry(&job, &image, "nope").await.status(), 404);
    assert_eq!(
        app.retry(&job, &Uuid::new_v4().to_string(), "f")
            .await
            .status(),
        404
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_retry_is_charged_to_the_work_rate(pool: PgPool) {
    let uploader = spawn_app(pool.clone()).await;
    let job = uploader.create_job(flip("f")).await;
    let image = failed_output(&uploader, &pool, &job, "f").await;
    let before = requests_waiting(&pool).await;
    let app = app_with(pool.clone(), |s| s.rates.work_per_minute = 1).await;

    let body = expect_json(app.retry(&job, &image, "f").await, 400).await;
    assert_error(&body, &["megapixel passes", "DARKROOM_RATE_LIMIT_WORK"]);
    assert_eq!(requests_waiting(&pool).await, before);
    assert_eq!(app.job_status(&job).await["counts"]["failed"], 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn deleting_a_job_removes_it_and_its_files_now_and_no_other(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(flip("f")).await;
    let other = app.create_job(flip("f")).await;
    app.upload_accepted(&job, "rocket.jpg").await;
    app.upload_accepted(&other, "rocket.jpg").await;

    assert_eq!(app.delete_job(&job, &other.token).await.status(), 404);
    assert_eq!(app.delete_job(&job, &job.token).await.status(), 204);
    assert_eq!(app.job_get(&job, "").await.status(), 404);
    assert_eq!(app.originals(&job).await, 0);
    assert_eq!(app.delete_job(&job, &job.token).await.status(), 404);
    let jobs = "select count(*) from jobs";
    assert_eq!(support::scalar(&pool, jobs).await, 1);
    assert_eq!(app.originals(&other).await, 1);
    assert_eq!(app.job_status(&other).await["counts"]["total"], 1);
}
