//! Uploads through `darkroom-web` next to plain PUTs of the same files
//! straight to the S3 server, side by side in one run.
//!
//! 200 uploads of a 12 MP JPEG (about 5 MB, see worker/benches/photo12mp.rs)
//! by 8 concurrent clients, each a multipart request of one file to a job with
//! a thumbnail recipe; no worker runs, so this measures the web server alone:
//! streaming to S3, header checks, the database rows and request messages.
//! Then the same 200 PUTs with the AWS SDK, 8 at a time. Reports MB/s for
//! both, their ratio, and the web process's peak RSS (VmHWM).
//!
//! Run with `scripts/bench-uploads` (provisions Postgres and the S3 server,
//! builds the release `darkroom-web`).

#[path = "../../worker/benches/photo12mp.rs"]
mod photo12mp;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use worker::storage::{Storage, StorageArgs};

const UPLOADS: usize = 200;
const CLIENTS: usize = 8;

struct Web(Child);

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn storage_args(bucket: &str) -> StorageArgs {
    StorageArgs {
        endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
        region: "us-east-1".into(),
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").ok(),
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
        bucket: bucket.into(),
    }
}

/// Peak resident set of a process, in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

/// Runs `job` `UPLOADS` times, `CLIENTS` at a time; returns the seconds taken.
async fn concurrently<F, Fut>(job: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let left = Arc::new(AtomicUsize::new(UPLOADS));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (job, left) = (job.clone(), left.clone());
            tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    job().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let photo = Bytes::from(std::fs::read(photo12mp::input()).unwrap());
    let mb = (photo.len() * UPLOADS) as f64 / 1e6;

    // A database of its own, migrated by the web server at start-up.
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let admin: PgConnectOptions = url.parse().unwrap();
    let mut conn = admin.connect().await.unwrap();
    for q in [
        "drop database if exists darkroom_bench_uploads with (force)",
        "create database darkroom_bench_uploads",
    ] {
        sqlx::query(q).execute(&mut conn).await.unwrap();
    }
    let mut db_url = url::Url::parse(&url).unwrap();
    db_url.set_path("darkroom_bench_uploads");

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bin = photo12mp::workspace().join("target/release/darkroom-web");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --bin darkroom-web"
    );
    let web = Web(Command::new(bin)
        .env("DATABASE_URL", db_url.as_str())
        .env("DARKROOM_BIND", format!("127.0.0.1:{port}"))
        .env("DARKROOM_BUCKET", "bench-uploads")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "darkroom-web did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job: Value = client
        .post(format!("{base}/api/jobs"))
        .json(&json!({"recipes":[{"name":"thumb","ops":[{"op":"thumbnail","width":256,"height":256}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload_url = format!("{base}/api/jobs/{}/images", job["id"].as_str().unwrap());
    let token = job["token"].as_str().unwrap().to_owned();

    let web_secs = {
        let (client, photo) = (client.clone(), photo.clone());
        concurrently(move || {
            let (client, photo, url, token) = (
                client.clone(),
                photo.clone(),
                upload_url.clone(),
                token.clone(),
            );
            async move {
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::stream(photo).file_name("photo.jpg"),
                );
                let res = client
                    .post(url)
                    .bearer_auth(token)
                    .multipart(form)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
            }
        })
        .await
    };
    let rss = peak_rss_mb(web.0.id());
    drop(web);

    let storage = Storage::connect(&storage_args("bench-plain-put"))
        .await
        .unwrap();
    let put_secs = {
        let n = Arc::new(AtomicUsize::new(0));
        concurrently(move || {
            let (storage, photo, n) = (storage.clone(), photo.clone(), n.clone());
            async move {
                let key = format!("put/{}", n.fetch_add(1, Ordering::Relaxed));
                storage.put(&key, photo, "image/jpeg").await.unwrap();
            }
        })
        .await
    };

    println!(
        "{UPLOADS} uploads of a {:.1} MB 12 MP JPEG, {CLIENTS} concurrent clients\n",
        mb / UPLOADS as f64
    );
    println!("| path | MB/s | ratio | web peak RSS MB |\n|---|---:|---:|---:|");
    println!(
        "| darkroom-web (multipart upload, checks, rows, messages) | {:.1} | **{:.2}×** | {rss:.0} |",
        mb / web_secs,
        put_secs / web_secs
    );
    println!(
        "| plain PUT to the S3 server | {:.1} | 1.00× | — |",
        mb / put_secs
    );
}
