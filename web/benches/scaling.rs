//! End-to-end throughput of worker fleets on the 12 MP thumbnail recipe,
//! next to `darkroom-worker apply` on the same file in as many lanes, side
//! by side in one run.
//!
//! For each fleet (processes × slots, prefetch, pinned or not): a job of
//! `IMAGES` copies of the 12 MP photo is uploaded while no worker runs; then
//! the workers start and the clock runs until the last output is final. The
//! raw rate is as many parallel loops of `darkroom-worker apply` as the
//! fleet has slots, over the same number of images (file in, file out, no
//! queue, no S3). End to end is bounded here by the S3 server's CPU, which
//! shares the two cores; what Darkroom controls is the worker's CPU per
//! image (its engine children included) against `apply`'s, and the
//! services' CPU per image. Pinned fleets run with the S3 server on core 0
//! and the workers (and the raw lanes) on core 1.
//!
//! Every figure is the median of `ROUNDS` rounds. Also measured per
//! message, from Postgres' own counters over the end-to-end runs:
//! transactions (each statement here is one), rows written and WAL bytes.
//!
//! Run with `scripts/bench-scaling` (provisions Postgres and the S3 server,
//! builds the release binaries).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::multipart::Part;
use sqlx::postgres::PgPoolOptions;
use support::{
    S3_SERVERS, cpu_secs, cpu_secs_named, create_job, db_counters, finished, form, fresh_database,
    median, pids_named, release_bin, s3_cpu_secs, start_workers, thumbnail_recipes, upload,
};
use testkit::photo12mp;

const IMAGES: usize = 48;
const ROUNDS: usize = 3;

/// How one row's workers run.
#[derive(Clone, Copy)]
struct Fleet {
    processes: usize,
    slots: usize,
    prefetch: usize,
    /// The S3 server on core 0, the workers and raw lanes on core 1.
    pinned: bool,
}

impl Fleet {
    const fn new(processes: usize, slots: usize, prefetch: usize, pinned: bool) -> Self {
        Self {
            processes,
            slots,
            prefetch,
            pinned,
        }
    }

    fn lanes(self) -> usize {
        self.processes * self.slots
    }
}

const FLEETS: [Fleet; 6] = [
    Fleet::new(1, 1, 0, false),
    Fleet::new(1, 1, 1, false),
    Fleet::new(1, 2, 1, false),
    Fleet::new(2, 2, 1, false),
    Fleet::new(1, 1, 0, true),
    Fleet::new(1, 1, 1, true),
];

/// Restricts every thread of `pid` (and what it starts later) to `cpus`.
fn pin(pid: u32, cpus: &str) {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("taskset (util-linux) runs");
    assert!(status.success());
}

/// Seconds for `n` parallel loops of `darkroom-worker apply` to make
/// `IMAGES` thumbnails in all (on core 1 when `pinned`).
fn raw_apply(n: usize, pinned: bool, input: &Path, out_dir: &Path) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for lane in 0..n {
            s.spawn(move || {
                for i in (lane..IMAGES).step_by(n) {
                    let mut cmd = if pinned {
                        let mut c = Command::new("taskset");
                        c.args(["-c", "1"]).arg(release_bin("darkroom-worker"));
                        c
                    } else {
                        Command::new(release_bin("darkroom-worker"))
                    };
                    let status = cmd
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
            // One client address uploads every fleet's job.
            .env("DARKROOM_RATE_LIMIT_WORK", "0")
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
    for fleet in FLEETS {
        let mut rounds = Vec::new();
        for _ in 0..ROUNDS {
            let (round, db) =
                run_fleet(fleet, &env, (&client, &base), &pool, &photo, web_pid).await;
            let raw_cpu0 = cpu_secs("self", true);
            let raw = raw_apply(fleet.lanes(), fleet.pinned, &input, &out_dir);
            let raw_cpu = cpu_secs("self", true) - raw_cpu0;
            rounds.push(Row {
                raw: IMAGES as f64 / raw,
                raw_ms: raw_cpu * 1000.0 / IMAGES as f64,
                ..round
            });
            db_total.0 += db.0;
            db_total.1 += db.1;
            db_total.2 += db.2;
            db_total.3 += IMAGES;
        }
        rows.push((fleet, Row::median(&rounds)));
    }

    println!(
        "{IMAGES} thumbnails (256 px) of a {:.1} MB 12 MP JPEG per round; median of {ROUNDS} \
         rounds; {} cores\n",
        photo.len() as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| processes × slots | prefetch | pinned | end-to-end images/s | raw `apply` images/s | end-to-end / raw | worker CPU ms/image (of which outside the engine) | `apply` CPU ms/image | worker / `apply` CPU | Postgres / S3 server / web CPU ms/image |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (f, r) in rows {
        println!(
            "| {} × {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.0} ({:.1}) | {:.0} | **{:.2}×** | {:.1} / {:.1} / {:.1} |",
            f.processes,
            f.slots,
            f.prefetch,
            if f.pinned {
                "S3 core 0, workers core 1"
            } else {
                "no"
            },
            r.e2e,
            r.raw,
            r.e2e / r.raw,
            r.worker_ms,
            r.own_ms,
            r.raw_ms,
            r.worker_ms / r.raw_ms,
            r.services_ms[0],
            r.services_ms[1],
            r.services_ms[2],
        );
    }
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

/// One round of one fleet.
#[derive(Clone, Copy, Default)]
struct Row {
    e2e: f64,
    raw: f64,
    /// Worker processes and their engine children.
    worker_ms: f64,
    /// Worker processes alone: the queue, S3 and handing the engine its image.
    own_ms: f64,
    raw_ms: f64,
    /// Postgres, the S3 server, darkroom-web.
    services_ms: [f64; 3],
}

impl Row {
    /// Each figure's median over the rounds.
    fn median(rounds: &[Row]) -> Row {
        let m = |f: &dyn Fn(&Row) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
        Row {
            e2e: m(&|r| r.e2e),
            raw: m(&|r| r.raw),
            worker_ms: m(&|r| r.worker_ms),
            own_ms: m(&|r| r.own_ms),
            raw_ms: m(&|r| r.raw_ms),
            services_ms: [
                m(&|r| r.services_ms[0]),
                m(&|r| r.services_ms[1]),
                m(&|r| r.services_ms[2]),
            ],
        }
    }
}

/// Uploads a job of `IMAGES`, runs `fleet` until every output is final;
/// returns its figures and Postgres' (transactions, rows, WAL bytes).
async fn run_fleet(
    fleet: Fleet,
    env: &impl Fn(&mut Command),
    (client, base): (&reqwest::Client, &str),
    pool: &sqlx::PgPool,
    photo: &[u8],
    web_pid: u32,
) -> (Row, (i64, i64, i64)) {
    let job = create_job(client, base, &thumbnail_recipes())
        .await
        .expect("job created");
    for chunk in 0..IMAGES / 8 {
        let parts =
            (0..8).map(|i| Part::bytes(photo.to_vec()).file_name(format!("{}.jpg", chunk * 8 + i)));
        let res = upload(client, base, &job, form(parts)).await.unwrap();
        assert_eq!(res.status(), 201);
    }
    if fleet.pinned {
        pids_named(S3_SERVERS)
            .into_iter()
            .for_each(|pid| pin(pid, "0"));
    }

    let before = db_counters(pool).await;
    let services0 = service_cpu(web_pid);
    let start = Instant::now();
    let workers = start_workers(fleet.processes, |cmd| {
        env(cmd);
        cmd.env("DARKROOM_WORKER_CONCURRENCY", fleet.slots.to_string())
            .env("DARKROOM_WORKER_PREFETCH", fleet.prefetch.to_string());
    });
    if fleet.pinned {
        workers.iter().for_each(|w| pin(w.0.id(), "1"));
    }
    let mut polls = 0;
    while finished(pool, &job.id).await < IMAGES as i64 {
        polls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e2e = start.elapsed().as_secs_f64();
    let pids: Vec<String> = workers.iter().map(|w| w.0.id().to_string()).collect();
    let own_cpu: f64 = pids.iter().map(|pid| cpu_secs(pid, false)).sum();
    let worker_cpu = own_cpu + pids.iter().map(|pid| cpu_secs(pid, true)).sum::<f64>();
    drop(workers);
    let services1 = service_cpu(web_pid);
    if fleet.pinned {
        pids_named(S3_SERVERS)
            .into_iter()
            .for_each(|pid| pin(pid, "0,1"));
    }
    let after = db_counters(pool).await;
    let ms = |secs: f64| secs * 1000.0 / IMAGES as f64;
    let row = Row {
        e2e: IMAGES as f64 / e2e,
        worker_ms: ms(worker_cpu),
        own_ms: ms(own_cpu),
        services_ms: std::array::from_fn(|i| ms(services1[i] - services0[i])),
        ..Row::default()
    };
    // Not the system's cost: this bench's own polls and counter reads.
    let db = (
        after.xacts - before.xacts - polls - 3,
        after.rows - before.rows,
        after.wal - before.wal,
    );
    (row, db)
}
