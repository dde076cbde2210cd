//! Helpers for HTTP tests: a real server on port 0, real Postgres, a real S3
//! server (its endpoint comes from the environment set by `scripts/test`).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::storage::{Storage, StorageArgs};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use web::{AppState, Settings};

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

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    pub async fn create_job(&self, recipes: Value) -> Job {
        let res = self
            .client
            .post(self.url("/api/jobs"))
            .json(&json!({ "recipes": recipes }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let body: Value = res.json().await.unwrap();
        Job {
            id: body["id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    /// Uploads `(file name, bytes)` pairs as `file` parts.
    pub async fn upload(&self, job: &Job, files: &[(&str, Vec<u8>)]) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        self.client
            .post(self.url(&format!("/api/jobs/{}/images", job.id)))
            .bearer_auth(&job.token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn job_status(&self, job: &Job) -> Value {
        let res = self
            .client
            .get(self.url(&format!("/api/jobs/{}", job.id)))
            .bearer_auth(&job.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Polls the job until it is `done`, failing after `limit`.
    pub async fn wait_done(&self, job: &Job, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.job_status(job).await;
            if status["state"] == "done" {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "job not done in {limit:?}: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn photo(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A PNG whose header claims `width`×`height` pixels (a decompression
/// bomb): a real 1×1 image with its IHDR rewritten.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
        .unwrap();
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// The URL of the test's own database, for child processes.
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set by sqlx::test");
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(
        pool.connect_options()
            .get_database()
            .expect("test database name"),
    );
    url.to_string()
}

/// A binary of this workspace, built next to the test executable.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// A child process killed when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a `darkroom-worker` process on the test's database and bucket.
pub fn spawn_worker(pool: &PgPool, storage: &StorageArgs) -> ChildGuard {
    let child = Command::new(workspace_bin("darkroom-worker"))
        .env("DATABASE_URL", database_url(pool))
        .env("AWS_ENDPOINT_URL", storage.endpoint_url.as_deref().unwrap())
        .env("DARKROOM_BUCKET", &storage.bucket)
        .env("DARKROOM_WORKER_CONCURRENCY", "2")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("start darkroom-worker");
    ChildGuard(child)
}
