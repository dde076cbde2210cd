//! Uploads through `darkroom-web` next to plain PUTs of the same files
//! straight to the S3 server, side by side in one run.
//!
//! 200 uploads of a 12 MP JPEG (about 5 MB, see worker/benches/photo12mp.rs)
//! by 8 concurrent clients, each a multipart request of one file to a job with
//! a thumbnail recipe; no worker runs, so this measures the web server alone:
//! streaming to S3, header checks, the database rows and request messages.
//! Then the same 200 PUTs with the AWS SDK, 8 at a time. Rounds of both
//! alternate; reports median MB/s for both, their ratio (and each round's),
//! the web process's peak RSS (VmHWM) and CPU time, and how busy the whole
//! machine was.
//!
//! Run with `scripts/bench-uploads` (provisions Postgres and the S3 server,
//! builds the release `darkroom-web`).

#[path = "../../worker/benches/photo12mp.rs"]
mod photo12mp;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use common::storage::{Storage, StorageArgs};
use reqwest::multipart::Part;
use support::{
    cpu_secs, create_job, form, fresh_database, peak_rss_mb, s3_cpu_secs, thumbnail_recipes, upload,
};

const UPLOADS: usize = 200;
const CLIENTS: usize = 8;
/// Rounds of both paths; the figures are medians.
const ROUNDS: usize = 3;

fn storage_args(bucket: &str) -> StorageArgs {
    StorageArgs {
        endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
        region: "us-east-1".into(),
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").ok(),
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
        bucket: bucket.into(),
    }
}

/// Busy and total jiffies of the whole machine.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let idle = v[3] + v[4];
    let total: u64 = v.iter().sum();
    (total - idle, total)
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `UPLOADS` multipart uploads of `photo` to a new job; returns seconds.
async fn upload_through_web(client: &reqwest::Client, base: &str, photo: &Bytes) -> f64 {
    let job = create_job(client, base, &thumbnail_recipes())
        .await
        .expect("job created");
    let (client, base, photo) = (client.clone(), base.to_owned(), photo.clone());
    concurrently(move || {
        let (client, base, photo, job) = (client.clone(), base.clone(), photo.clone(), job.clone());
        async move {
            let part = Part::stream(photo).file_name("photo.jpg");
            let res = upload(&client, &base, &job, form([part])).await.unwrap();
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        }
    })
    .await
}

/// `UPLOADS` PUTs of `photo` straight to the S3 server; returns seconds.
async fn put_straight(storage: &Storage, photo: &Bytes, round: usize) -> f64 {
    let n = Arc::new(AtomicUsize::new(0));
    let (storage, photo) = (storage.clone(), photo.clone());
    concurrently(move || {
        let (storage, photo, n) = (storage.clone(), photo.clone(), n.clone());
        async move {
            let key = format!("put-{round}/{}", n.fetch_add(1, Ordering::Relaxed));
            storage.put(&key, photo, "image/jpeg").await.unwrap();
        }
    })
    .await
}

#[tokio::main]
async fn main() {
    let photo = Bytes::from(std::fs::read(photo12mp::input()).unwrap());
    let mb = (photo.len() * UPLOADS) as f64 / 1e6;

    let db_url = fresh_database("darkroom_bench_uploads").await;
    let (web, base) = support::start_web(|cmd| {
        cmd.env("DATABASE_URL", db_url.as_str())
            .env("DARKROOM_BUCKET", "bench-uploads")
            .env("RUST_LOG", "warn");
    })
    .await;
    let client = reqwest::Client::new();
    let storage = Storage::connect(&storage_args("bench-plain-put"))
        .await
        .unwrap();
    let (mut web_runs, mut put_runs, mut web_busy, mut put_busy) = (vec![], vec![], vec![], vec![]);
    // CPU seconds of this bench (the clients) and of the S3 server, per round.
    let (mut web_side_cpu, mut put_side_cpu) = (Vec::<[f64; 2]>::new(), Vec::<[f64; 2]>::new());
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always meets a warmer server.
        for web_turn in [round % 2 == 0, round % 2 == 1] {
            let (busy0, total0) = machine_jiffies();
            let me0 = cpu_secs("self", false);
            let s3_0 = s3_cpu_secs();
            let secs = if web_turn {
                upload_through_web(&client, &base, &photo).await
            } else {
                put_straight(&storage, &photo, round).await
            };
            let (busy1, total1) = machine_jiffies();
            let cpu = [cpu_secs("self", false) - me0, s3_cpu_secs() - s3_0];
            let busy = (busy1 - busy0) as f64 / (total1 - total0) as f64;
            if web_turn {
                web_runs.push(secs);
                web_busy.push(busy);
                web_side_cpu.push(cpu);
            } else {
                put_runs.push(secs);
                put_busy.push(busy);
                put_side_cpu.push(cpu);
            }
        }
    }
    let web_cpu = cpu_secs(&web.0.id().to_string(), false) / ROUNDS as f64;
    let rss = peak_rss_mb(web.0.id());
    drop(web);
    let mut ratios: Vec<f64> = web_runs.iter().zip(&put_runs).map(|(w, p)| p / w).collect();
    ratios.sort_by(f64::total_cmp);
    let (web_secs, put_secs) = (median(&mut web_runs), median(&mut put_runs));
    let (web_busy, put_busy) = (median(&mut web_busy), median(&mut put_busy));
    let side = |v: &[[f64; 2]], i: usize| median(&mut v.iter().map(|c| c[i]).collect::<Vec<_>>());
    let (web_client, web_s3) = (side(&web_side_cpu, 0), side(&web_side_cpu, 1));
    let (put_client, put_s3) = (side(&put_side_cpu, 0), side(&put_side_cpu, 1));

    println!(
        "{UPLOADS} uploads of a {:.1} MB 12 MP JPEG, {CLIENTS} concurrent clients, \
         median of {ROUNDS} alternating rounds\n",
        mb / UPLOADS as f64
    );
    println!(
        "| path | MB/s | ratio | web peak RSS MB | CPU s per round: web / S3 server / clients | machine busy |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    println!(
        "| darkroom-web (multipart upload, checks, rows, messages) | {:.1} | **{:.2}×** | {rss:.0} | {web_cpu:.1} / {web_s3:.1} / {web_client:.1} | {:.0}% |",
        mb / web_secs,
        put_secs / web_secs,
        web_busy * 100.0
    );
    println!(
        "| plain PUT to the S3 server | {:.1} | 1.00× | — | — / {put_s3:.1} / {put_client:.1} | {:.0}% |",
        mb / put_secs,
        put_busy * 100.0
    );
    println!(
        "\nratio of each round: {}",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
