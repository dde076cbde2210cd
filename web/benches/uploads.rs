//! Uploads through `darkroom-web` next to nginx proxying the same
//! multipart bodies to the same S3 server, side by side in one run.
//!
//! 200 uploads of a 12 MP JPEG (about 5 MB, see testkit/src/photo12mp.rs)
//! by 8 concurrent clients, each a multipart request of one file. Through
//! `darkroom-web`: to a job with a thumbnail recipe, no worker running, so
//! this measures the web server alone: streaming to S3, header checks, the
//! database rows and request messages. Through nginx (the Debian package):
//! the same request to a presigned PUT URL, which nginx streams to the S3
//! server as the object (`proxy_request_buffering off`, `proxy_method
//! PUT`): the same bytes moved with none of Darkroom's checks, the
//! yardstick a same-shaped proxy sets. Rounds alternate which goes first;
//! reports median MB/s for both, their ratio (and each round's), CPU per GB
//! of each server, of the S3 server and of the clients, the web process's
//! peak RSS (VmHWM) and how busy the whole machine was.
//!
//! Run with `scripts/bench-uploads` (provisions Postgres, the S3 server and
//! nginx, builds the release `darkroom-web`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use common::storage::{Storage, StorageArgs};
use reqwest::multipart::Part;
use support::{
    Guard, cpu_secs, cpu_secs_named, create_job, form, fresh_database, median, peak_rss_mb,
    s3_cpu_secs, thumbnail_recipes, upload,
};
use testkit::photo12mp;

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

/// nginx on a free port, proxying every request to the S3 server at
/// `s3` as a PUT of its body, streamed; returns it and its base URL.
async fn start_nginx(s3: &str) -> (Guard, String) {
    let dir = std::env::temp_dir().join(format!("darkroom-bench-nginx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = support::free_port();
    let s3_host = s3.trim_start_matches("http://").trim_end_matches('/');
    let d = dir.display();
    // As close to a pass-through as nginx gets: bodies streamed as they
    // arrive, kept-alive connections to the S3 server, no logs.
    let conf = format!(
        "worker_processes auto;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_max_body_size 0;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream s3 {{ server {s3_host}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://s3;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host {s3_host};
            proxy_method PUT;
            proxy_request_buffering off;
        }}
    }}
}}
"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let nginx = Guard(
        std::process::Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .spawn()
            .expect("nginx runs (scripts/bench-uploads installs it)"),
    );
    let base = format!("http://127.0.0.1:{port}");
    support::wait_until_up(&base, "nginx", std::time::Duration::from_secs(10)).await;
    (nginx, base)
}

/// Signs PUT URLs for the bucket nginx uploads into.
async fn presigner() -> aws_sdk_s3::Client {
    let args = storage_args("bench-nginx");
    // The bucket, made as the app makes its own.
    Storage::connect(&args).await.unwrap();
    let shared = aws_config::load_from_env().await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// `UPLOADS` multipart requests of `photo` through nginx, each to a
/// presigned PUT URL of its own; returns seconds.
async fn upload_through_nginx(
    client: &reqwest::Client,
    base: &str,
    s3: &aws_sdk_s3::Client,
    photo: &Bytes,
    round: usize,
) -> f64 {
    // Signed before the clock starts: the signing is the client's work.
    let expires = PresigningConfig::expires_in(std::time::Duration::from_secs(3600)).unwrap();
    let mut urls = Vec::with_capacity(UPLOADS);
    for i in 0..UPLOADS {
        let signed = s3
            .put_object()
            .bucket("bench-nginx")
            .key(format!("round-{round}/{i}"))
            .presigned(expires.clone())
            .await
            .unwrap();
        let uri: reqwest::Url = signed.uri().parse().unwrap();
        urls.push(format!(
            "{base}{}?{}",
            uri.path(),
            uri.query().unwrap_or("")
        ));
    }
    let urls = Arc::new(std::sync::Mutex::new(urls));
    let (client, photo) = (client.clone(), photo.clone());
    concurrently(move || {
        let (client, photo) = (client.clone(), photo.clone());
        let url = urls.lock().unwrap().pop().expect("one URL per upload");
        async move {
            let part = Part::stream(photo).file_name("photo.jpg");
            let res = client
                .post(url)
                .multipart(form([part]))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        }
    })
    .await
}

/// One round of one path: seconds, how busy the machine was, and CPU
/// seconds of the server (darkroom-web or nginx), the S3 server and the
/// clients (this process).
#[derive(Clone, Copy)]
struct Round {
    secs: f64,
    busy: f64,
    cpu: [f64; 3],
}

/// Runs `path` and measures it; `server_cpu` reads the server's CPU seconds.
async fn measure(path: impl Future<Output = f64>, server_cpu: impl Fn() -> f64) -> Round {
    let (busy0, total0) = machine_jiffies();
    let cpu0 = [server_cpu(), s3_cpu_secs(), cpu_secs("self", false)];
    let secs = path.await;
    let (busy1, total1) = machine_jiffies();
    let cpu1 = [server_cpu(), s3_cpu_secs(), cpu_secs("self", false)];
    Round {
        secs,
        busy: (busy1 - busy0) as f64 / (total1 - total0) as f64,
        cpu: std::array::from_fn(|i| cpu1[i] - cpu0[i]),
    }
}

#[tokio::main]
async fn main() {
    let photo = Bytes::from(std::fs::read(photo12mp::input()).unwrap());
    let mb = (photo.len() * UPLOADS) as f64 / 1e6;

    let db_url = fresh_database("darkroom_bench_uploads").await;
    let (web, base) = support::start_web(|cmd| {
        cmd.env("DATABASE_URL", db_url.as_str())
            .env("DARKROOM_BUCKET", "bench-uploads")
            // One client address makes every upload here.
            .env("DARKROOM_RATE_LIMIT_REQUESTS", "0")
            .env("DARKROOM_RATE_LIMIT_UPLOADS", "0")
            .env("DARKROOM_RATE_LIMIT_WORK", "0")
            .env("RUST_LOG", "warn");
    })
    .await;
    let s3_url = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let (nginx, nginx_base) = start_nginx(&s3_url).await;
    let s3 = presigner().await;
    let client = reqwest::Client::new();
    let web_pid = web.0.id().to_string();
    let (mut web_rounds, mut nginx_rounds) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always meets a warmer server.
        for web_turn in [round % 2 == 0, round % 2 == 1] {
            if web_turn {
                let path = upload_through_web(&client, &base, &photo);
                web_rounds.push(measure(path, || cpu_secs(&web_pid, false)).await);
            } else {
                let path = upload_through_nginx(&client, &nginx_base, &s3, &photo, round);
                nginx_rounds.push(measure(path, || cpu_secs_named(&["nginx"])).await);
            }
        }
    }
    let rss = peak_rss_mb(web.0.id());
    drop((web, nginx));
    let mut ratios: Vec<f64> = web_rounds
        .iter()
        .zip(&nginx_rounds)
        .map(|(w, n)| n.secs / w.secs)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let med = |rounds: &[Round], f: &dyn Fn(&Round) -> f64| {
        median(&mut rounds.iter().map(f).collect::<Vec<_>>())
    };
    let gb = mb / 1000.0;
    let figures = |rounds: &[Round]| {
        (
            med(rounds, &|r| r.secs),
            med(rounds, &|r| r.busy),
            std::array::from_fn::<f64, 3, _>(|i| med(rounds, &|r| r.cpu[i]) / gb),
        )
    };
    let (web_secs, web_busy, web_cpu) = figures(&web_rounds);
    let (nginx_secs, nginx_busy, nginx_cpu) = figures(&nginx_rounds);

    println!(
        "{UPLOADS} uploads of a {:.1} MB 12 MP JPEG, {CLIENTS} concurrent clients, \
         median of {ROUNDS} alternating rounds\n",
        mb / UPLOADS as f64
    );
    println!(
        "| path | MB/s | throughput vs nginx | server CPU s/GB | vs nginx | S3 server / clients CPU s/GB | server peak RSS MB | machine busy |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    println!(
        "| darkroom-web (multipart upload, checks, rows, messages) | {:.1} | **{:.2}×** | {:.2} | **{:.2}×** | {:.2} / {:.2} | {rss:.0} | {:.0}% |",
        mb / web_secs,
        nginx_secs / web_secs,
        web_cpu[0],
        web_cpu[0] / nginx_cpu[0],
        web_cpu[1],
        web_cpu[2],
        web_busy * 100.0
    );
    println!(
        "| nginx 1.22 proxying to a presigned PUT (`proxy_request_buffering off`) | {:.1} | 1.00× | {:.2} | 1.00× | {:.2} / {:.2} | — | {:.0}% |",
        mb / nginx_secs,
        nginx_cpu[0],
        nginx_cpu[1],
        nginx_cpu[2],
        nginx_busy * 100.0
    );
    println!(
        "\nthroughput ratio of each round: {}",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
