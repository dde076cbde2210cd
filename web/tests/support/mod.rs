//! Helpers for HTTP tests: a real server on port 0, real Postgres, a real S3
//! server (its endpoint comes from the environment set by `scripts/test`).

#![allow(dead_code)]

mod checks;
mod db;
mod inputs;
mod processes;
mod workers;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::storage::{Storage, StorageArgs};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use web::{AppState, Settings};

// Each test uses some of them.
#[allow(unused_imports)]
pub use {checks::*, db::*, inputs::*, processes::*, workers::*};

pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin listener: queue API, metrics.
    pub admin_addr: SocketAddr,
    pub client: reqwest::Client,
    pub storage: Storage,
    pub storage_args: StorageArgs,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// S3 settings from the environment, with a bucket of the test's own.
pub fn storage_args() -> StorageArgs {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run the tests through scripts/test");
    StorageArgs {
        endpoint_url: Some(endpoint),
        region: "us-east-1".into(),
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").ok(),
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
        bucket: format!("test-{}", uuid::Uuid::new_v4().simple()),
    }
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, Settings::default()).await
}

/// An app on the default settings as changed by `tune`, e.g.
/// `app_with(pool, |s| s.rates.uploads_per_minute = 1)`.
pub async fn app_with(pool: PgPool, tune: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::default();
    tune(&mut settings);
    spawn_app_with(pool, settings).await
}

/// An app whose queue API takes `token` as its admin token.
pub async fn app_with_admin(pool: PgPool, token: &str) -> TestApp {
    let token = queue::AdminToken::new(token).unwrap();
    app_with(pool, |s| s.admin_token = Some(token)).await
}

pub async fn spawn_app_with(pool: PgPool, settings: Settings) -> TestApp {
    let storage_args = storage_args();
    let storage = Storage::connect(&storage_args)
        .await
        .expect("S3 server reachable");
    let state = AppState::new(pool, storage.clone(), settings)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(web::serve(listener, admin, state, shutdown.clone()));
    TestApp {
        addr,
        admin_addr,
        client: reqwest::Client::new(),
        storage,
        storage_args,
        shutdown,
    }
}

pub struct Job {
    pub id: String,
    pub token: String,
}

impl Job {
    /// The job a creation answer describes.
    pub fn from_created(body: &Value) -> Self {
        Job {
            id: body["id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    /// GET on the public listener, without credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// GET on the public listener with `token` as the bearer.
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        let req = self.client.get(self.url(path)).bearer_auth(token);
        req.send().await.unwrap()
    }

    /// GET on the admin listener, with `token` as the bearer if given.
    pub async fn admin_get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.admin_url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// GET `/api/jobs/{id}` followed by `rest`, with the job's token.
    pub async fn job_get(&self, job: &Job, rest: &str) -> reqwest::Response {
        self.get_as(&format!("/api/jobs/{}{rest}", job.id), &job.token)
            .await
    }

    /// The original of an uploaded image, with the job's token.
    pub async fn original(&self, job: &Job, image: &str) -> reqwest::Response {
        self.job_get(job, &format!("/images/{image}/original"))
            .await
    }

    /// POSTs `body` as JSON to the public listener.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        let req = self.client.post(self.url(path)).json(body);
        req.send().await.unwrap()
    }

    /// Asks for a job with `recipes`; returns the status and the answer.
    pub async fn create(&self, recipes: Value) -> (u16, Value) {
        let res = self
            .post_json("/api/jobs", &json!({ "recipes": recipes }))
            .await;
        (res.status().as_u16(), res.json().await.unwrap())
    }

    pub async fn create_job(&self, recipes: Value) -> Job {
        let (status, body) = self.create(recipes).await;
        assert_eq!(status, 201, "{body}");
        Job::from_created(&body)
    }

    /// Uploads `(file name, bytes)` pairs as `file` parts.
    pub async fn upload(&self, job: &Job, files: &[(&str, Vec<u8>)]) -> reqwest::Response {
        let form = form(files.iter().map(|(name, bytes)| (*name, bytes.as_slice())));
        self.client
            .post(self.url(&format!("/api/jobs/{}/images", job.id)))
            .bearer_auth(&job.token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads the test photo `name` (see [`photo`]) under its own name.
    pub async fn upload_one(&self, job: &Job, name: &str) -> reqwest::Response {
        self.upload(job, &[(name, photo(name))]).await
    }

    /// Uploads the test photo `name`, expecting it accepted; returns the
    /// new image's id.
    pub async fn upload_accepted(&self, job: &Job, name: &str) -> String {
        let body = expect_json(self.upload_one(job, name).await, 201).await;
        image_id(&body).to_owned()
    }

    pub async fn job_status(&self, job: &Job) -> Value {
        expect_json(self.job_get(job, "").await, 200).await
    }

    /// Polls the job until it is `done`, failing after `limit`.
    pub async fn wait_done(&self, job: &Job, limit: Duration) -> Value {
        poll(limit, async || {
            let status = self.job_status(job).await;
            match status["state"] == "done" {
                true => Ok(status),
                false => Err(format!("job not done: {status:#}")),
            }
        })
        .await
    }

    /// How many originals of the job are stored.
    pub async fn originals(&self, job: &Job) -> usize {
        let prefix = format!("jobs/{}/originals/", job.id);
        self.storage.list(&prefix).await.unwrap().len()
    }
}

/// An app on the default settings as changed by `tune`, and a job on it
/// with one quick recipe.
pub async fn app_and_job(pool: PgPool, tune: impl FnOnce(&mut Settings)) -> (TestApp, Job) {
    let app = app_with(pool, tune).await;
    let job = app.create_job(flip("f")).await;
    (app, job)
}

/// Makes a job of `recipes` and asserts that GET `/api/jobs/{id}`
/// followed by `rest` is not found without a token, with a wrong one or
/// with another job's; returns the job.
pub async fn assert_needs_token(app: &TestApp, recipes: Value, rest: &str) -> Job {
    let job = app.create_job(recipes.clone()).await;
    let other = app.create_job(recipes).await;
    let path = format!("/api/jobs/{}{rest}", job.id);
    assert_eq!(app.get(&path).await.status(), 404, "no token");
    for token in ["nonsense", other.token.as_str()] {
        assert_eq!(app.get_as(&path, token).await.status(), 404, "{token}");
    }
    job
}

/// Calls `probe` every 50 ms until it returns `Ok`, failing after `limit`
/// with the last `Err` (what was still missing).
pub async fn poll<T>(limit: Duration, probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    poll_every(Duration::from_millis(50), limit, probe).await
}

/// [`poll`], calling `probe` every `interval`.
pub async fn poll_every<T>(
    interval: Duration,
    limit: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(why) => assert!(Instant::now() < deadline, "after {limit:?}: {why}"),
        }
        tokio::time::sleep(interval).await;
    }
}
