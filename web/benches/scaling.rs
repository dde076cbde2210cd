//! End-to-end throughput of 1, 2 and 4 `darkroom-worker` processes on the
//! 12 MP thumbnail recipe, next to `darkroom-worker apply` run on the same
//! file by as many parallel processes, side by side in one run.
//!
//! For each N: a job of `IMAGES` copies of the 12 MP photo is uploaded while
//! no worker runs; then N workers (2 slots each) start and the clock runs
//! until the last output is final. The raw rate is 2·N parallel loops of
//! `darkroom-worker apply` over the same number of images (file in, file out,
//! no queue, no S3). Overhead = 1 − end-to-end / raw. The CPU time per image
//! of the worker processes and of the `apply` processes tells the worker's
//! own overhead apart from the services sharing the machine.
//!
//! Also measured per message, from Postgres' own counters over the
//! end-to-end runs: transactions (each statement here is one), rows written
//! and WAL bytes.
//!
//! Run with `scripts/bench-scaling` (provisions Postgres and the S3 server,
//! builds the release binaries).

#[path = "../../worker/benches/photo12mp.rs"]
mod photo12mp;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::multipart::Part;
use sqlx::postgres::PgPoolOptions;
use support::{
    cpu_secs, cpu_secs_named, create_job, db_counters, finished, form, fresh_database, release_bin,
    s3_cpu_secs, start_workers, thumbnail_recipes, upload,
};

const IMAGES: usize = 48;
const FLEETS: [usize; 3] = [1, 2, 4];

/// Seconds for `n` parallel loops of `darkroom-worker apply` to make
/// `IMAGES` thumbnails in all.
fn raw_apply(n: usize, input: &Path, out_dir: &Path) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for lane in 0..n {
            s.spawn(move || {
                for i in (lane..IMAGES).step_by(n) {
                    let status = Command::new(release_bin("darkroom-worker"))
                        .args([
                            "apply",
                            "--op",
                            r#"{"op":"thumbnail","width":256,"height":256}"#,
                        ])
                        .arg(input)
                        .arg(out_dir.join(format!("{i}.jpg")))
                        .status()
                        .unwrap();
                    assert!(status.success());
                }
            });
        }
    });
    start.elapsed().as_secs_f64()
}

/// CPU seconds used so far by the services the workers share the machine
/// with: Postgres, the S3 server and the web server.
fn service_cpu(web: u32) -> [f64; 3] {
    [
        cpu_secs_named(&["postgres"]),
        s3_cpu_secs(),
        cpu_secs(&web.to_string(), false),
    ]
}

#[tokio::main]
async fn main() {
    let input = photo12mp::input();
    let photo = std::fs::read(&input).unwrap();
    let out_dir = photo12mp::workspace().join("target/bench-data/scaling-out");
    std::fs::create_dir_all(&out_dir).unwrap();

    let db_url = fresh_database("darkroom_bench_scaling").await;
    let env = |cmd: &mut Command| {
        cmd.env("DATABASE_URL", db_url.as_str())
            .env("DARKROOM_BUCKET", "bench-scaling")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
    };
    let (web, base) = support::start_web(env).await;
    let web_pid = web.0.id();
    let client = reqwest::Client::new();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(db_url.as_str())
        .await
        .unwrap();

    let mut rows = Vec::new();
    let mut db_total = (0i64, 0i64, 0i64, 0usize);
    let mut service_total = [0f64; 3];
    for n in FLEETS {
        let job = create_job(&client, &base, &thumbnail_recipes())
            .await
            .expect("job created");
        for chunk in 0..IMAGES / 8 {
            let parts = (0..8)
                .map(|i| Part::bytes(photo.clone()).file_name(format!("{}.jpg", chunk * 8 + i)));
            let res = upload(&client, &base, &job, form(parts)).await.unwrap();
            assert_eq!(res.status(), 201);
        }

        let before = db_counters(&pool).await;
        let services0 = service_cpu(web_pid);
        let start = Instant::now();
        let workers = start_workers(n, |cmd| {
            env(cmd);
            cmd.env("DARKROOM_WORKER_CONCURRENCY", "2");
        });
        let mut polls = 0;
        while finished(&pool, &job.id).await < IMAGES as i64 {
            polls += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let e2e = start.elapsed().as_secs_f64();
        let worker_cpu: f64 = workers
            .iter()
            .map(|w| cpu_secs(&w.0.id().to_string(), false))
            .sum();
        drop(workers);
        let services1 = service_cpu(web_pid);
        for (total, (a, b)) in service_total
            .iter_mut()
            .zip(services1.iter().zip(services0))
        {
            *total += a - b;
        }
        let after = db_counters(&pool).await;
        // Not the system's cost: this bench's own polls and counter reads.
        db_total.0 += after.xacts - before.xacts - polls - 3;
        db_total.1 += after.rows - before.rows;
        db_total.2 += after.wal - before.wal;
        db_total.3 += IMAGES;

        let raw_cpu0 = cpu_secs("self", true);
        let raw = raw_apply(2 * n, &input, &out_dir);
        let raw_cpu = cpu_secs("self", true) - raw_cpu0;
        rows.push((
            n,
            IMAGES as f64 / e2e,
            IMAGES as f64 / raw,
            worker_cpu * 1000.0 / IMAGES as f64,
            raw_cpu * 1000.0 / IMAGES as f64,
        ));
    }

    println!(
        "{IMAGES} thumbnails (256 px) of a {:.1} MB 12 MP JPEG per row; \
         {} cores\n",
        photo.len() as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| worker processes (2 slots each) | end-to-end images/s | raw `apply` images/s ({} lanes per process) | overhead | worker CPU ms/image | raw `apply` CPU ms/image |\n\
         |---:|---:|---:|---:|---:|---:|",
        2
    );
    for (n, e2e, raw, worker_ms, raw_ms) in rows {
        println!(
            "| {n} | {e2e:.1} | {raw:.1} | {:.0}% | {worker_ms:.0} | {raw_ms:.0} |",
            (1.0 - e2e / raw) * 100.0
        );
    }
    let ms = |secs: f64| secs * 1000.0 / db_total.3 as f64;
    println!(
        "\nCPU per image of the services sharing the machine (end-to-end runs): \
         Postgres {:.0} ms, S3 server {:.0} ms, darkroom-web {:.0} ms",
        ms(service_total[0]),
        ms(service_total[1]),
        ms(service_total[2])
    );
    let per = |v: i64| v as f64 / db_total.3 as f64;
    println!(
        "\nPostgres per message (request + response, whole path incl. the web's \
         consumer; this bench's own queries taken out): {:.1} transactions, {:.1} rows written, \
         {:.0} WAL bytes",
        per(db_total.0),
        per(db_total.1),
        per(db_total.2)
    );
}
