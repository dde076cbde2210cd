//! What one image costs Postgres at steady state, statement by statement.
//!
//! A running fleet (`darkroom-web` and two `darkroom-worker`s, two slots
//! each) is warmed up with one job as large as the measured one (so every
//! pooled connection has its statements prepared and their generic plans
//! chosen, as in a fleet that has run for a while), then `IMAGES`
//! thumbnails go through the
//! whole path: the job's creation, its uploads (one file a request, three
//! requests at a time, as the browser sends them), the
//! workers' receives, responses and deletes, the web's consumer and the
//! background maintenance that runs meanwhile. Per image it reports:
//! transactions (from `pg_stat_database`), Postgres CPU (its server
//! processes, from /proc) and, from `pg_stat_statements`, each statement's
//! calls and execution time.
//!
//! Needs a server with `pg_stat_statements` preloaded, which
//! `scripts/bench-scaling cost` starts (a private cluster on a free port).

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::multipart::Part;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use support::{
    OURS, create_job, db_counters, finished, form, fresh_database, start_workers,
    thumbnail_recipes, upload,
};

const IMAGES: usize = 320;
/// Upload requests at once, one file each, as the browser sends them.
const UPLOADERS: usize = 3;
const WARM_UP: usize = 320;
/// Postgres counts an idle backend's transactions only when it flushes its
/// statistics, within 10 s of going idle (`PGSTAT_IDLE_INTERVAL`); LISTENing
/// backends, which read each NOTIFY in a transaction of their own, are idle
/// most of the time. Counters are read this long after the work they count.
const STATS_LAG: Duration = Duration::from_secs(11);

/// CPU seconds of the Postgres server behind `pool`, by role: its live
/// processes by what their title says they are, and what the postmaster's
/// children that ended (autovacuum workers, closed connections) and the
/// postmaster itself used.
async fn server_cpu(pool: &PgPool) -> BTreeMap<String, f64> {
    let backend: i32 = sqlx::query_scalar(&format!("{OURS} select pg_backend_pid()"))
        .fetch_one(pool)
        .await
        .unwrap();
    let postmaster = ppid(backend as u32);
    // A LISTENing connection's last statement is its LISTEN: it only waits.
    let listening: Vec<i32> = sqlx::query_scalar(&format!(
        "{OURS} select pid from pg_stat_activity where query ilike 'listen %'"
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    let mut roles = BTreeMap::new();
    for pid in std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
        .filter(|&pid| pid != postmaster && ppid(pid) == postmaster)
    {
        let title = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let role = [
            "autovacuum",
            "walwriter",
            "checkpointer",
            "background writer",
            "wal",
        ]
        .into_iter()
        .find(|r| title.contains(r))
        .unwrap_or(if listening.contains(&(pid as i32)) {
            "listening backends (reading NOTIFYs)"
        } else {
            "client backends"
        });
        *roles.entry(role.to_owned()).or_default() += support::cpu_secs(&pid.to_string(), false);
    }
    let pm = postmaster.to_string();
    roles.insert("ended processes".into(), support::cpu_secs(&pm, true));
    roles.insert("postmaster".into(), support::cpu_secs(&pm, false));
    roles
}

fn ppid(pid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s[s.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Transactions that wrote (drew an id), this bench's own reading included.
async fn writing_transactions(pool: &PgPool) -> i64 {
    sqlx::query_scalar(&format!("{OURS} select pg_current_xact_id()::text::int8"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until every output of `job` is final; returns the polls made.
async fn wait_final(pool: &PgPool, job: &str, outputs: usize) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut polls = 0;
    loop {
        polls += 1;
        if finished(pool, job).await == outputs as i64 {
            return polls;
        }
        assert!(Instant::now() < deadline, "the job did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a job of `images` copies of `photo` and waits until it is done;
/// returns the polls made.
async fn run_job(
    client: &reqwest::Client,
    base: &str,
    pool: &PgPool,
    photo: &[u8],
    images: usize,
) -> i64 {
    let job = create_job(client, base, &thumbnail_recipes())
        .await
        .expect("job created");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let uploader = async || {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= images {
                return;
            }
            let part = Part::bytes(photo.to_vec()).file_name(format!("{i}.jpg"));
            let res = upload(client, base, &job, form([part])).await.unwrap();
            assert_eq!(res.status(), 201);
        }
    };
    futures::future::join_all((0..UPLOADERS).map(|_| uploader())).await;
    wait_final(pool, &job.id, images).await
}

#[derive(sqlx::FromRow)]
struct Statement {
    query: String,
    calls: i64,
    total_ms: f64,
    plan_ms: f64,
    rows: i64,
}

#[tokio::main]
async fn main() {
    let photo = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/rocket.jpg"),
    )
    .unwrap();
    let db_url = fresh_database("darkroom_bench_cost").await;
    // No ping before each use: it would be a transaction of its own.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(db_url.as_str())
        .await
        .unwrap();
    sqlx::query("create extension if not exists pg_stat_statements")
        .execute(&pool)
        .await
        .expect("pg_stat_statements is preloaded: run this through scripts/bench-scaling cost");
    let env = |cmd: &mut Command| {
        cmd.env("DATABASE_URL", db_url.as_str())
            .env("DARKROOM_BUCKET", "bench-cost")
            // One client address makes every request here.
            .env("DARKROOM_RATE_LIMIT_REQUESTS", "0")
            .env("DARKROOM_RATE_LIMIT_UPLOADS", "0")
            .env("DARKROOM_RATE_LIMIT_WORK", "0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
    };
    let (_web, base) = support::start_web(env).await;
    let _workers = start_workers(2, |cmd| {
        env(cmd);
        cmd.env("DARKROOM_WORKER_CONCURRENCY", "2");
    });
    let client = reqwest::Client::new();
    run_job(&client, &base, &pool, &photo, WARM_UP).await;

    tokio::time::sleep(STATS_LAG).await;
    sqlx::query(&format!("{OURS} select pg_stat_statements_reset()"))
        .execute(&pool)
        .await
        .unwrap();
    let xacts0 = db_counters(&pool).await.xacts;
    let writes0 = writing_transactions(&pool).await;
    let cpu0 = server_cpu(&pool).await;
    let start = Instant::now();
    let polls = run_job(&client, &base, &pool, &photo, IMAGES).await;
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = server_cpu(&pool).await;
    let by_role: Vec<(String, f64)> = cpu1
        .iter()
        .map(|(role, secs)| (role.clone(), secs - cpu0.get(role).copied().unwrap_or(0.0)))
        .collect();
    let cpu: f64 = by_role.iter().map(|(_, secs)| secs).sum();
    let writes = writing_transactions(&pool).await - writes0 - 1;
    let listeners: i64 = sqlx::query_scalar(&format!(
        "{OURS} select count(*) from pg_stat_activity where query like 'LISTEN%'"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    let statements: Vec<Statement> = sqlx::query_as(&format!(
        "{OURS} select query, calls, total_exec_time + total_plan_time as total_ms, \
                total_plan_time as plan_ms, rows \
         from pg_stat_statements \
         where dbid = (select oid from pg_database where datname = current_database()) \
           and query not like '%{OURS}%' order by total_exec_time desc"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    // Counted once the run's last transactions are, then the fleet's idle
    // rate over as long, taken out.
    tokio::time::sleep(STATS_LAG).await;
    let xacts1 = db_counters(&pool).await.xacts;
    tokio::time::sleep(STATS_LAG).await;
    let idle = db_counters(&pool).await.xacts - xacts1;
    // Ours: the polls, the readings of the clock and the CPU.
    let xacts = xacts1 - xacts0 - idle - polls - 5;

    let per = |v: f64| v / IMAGES as f64;
    println!(
        "{IMAGES} thumbnails of a {:.0} kB JPEG, one recipe, through darkroom-web and 2 \
         workers (2 slots each), after a warm-up of {WARM_UP}; {:.1} images/s\n",
        photo.len() as f64 / 1e3,
        IMAGES as f64 / secs
    );
    println!(
        "Per image: **{:.1} transactions** ({:.1} of them writing; the fleet has {listeners} \
         LISTENing backends, each reading every NOTIFY in a transaction), **{:.2} ms of \
         Postgres CPU** (server processes), {:.2} ms of statement planning and execution\n",
        per(xacts as f64),
        per(writes as f64),
        per(cpu * 1000.0),
        per(statements.iter().map(|s| s.total_ms).sum())
    );
    let roles: Vec<String> = by_role
        .iter()
        .filter(|(_, secs)| per(secs * 1000.0) >= 0.005)
        .map(|(role, secs)| format!("{role} {:.2}", per(secs * 1000.0)))
        .collect();
    println!(
        "Postgres CPU ms per image by process: {}\n",
        roles.join(", ")
    );
    println!(
        "| statement | calls/image | rows/call | planning µs/call | execution µs/call | µs/image |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for s in statements.iter().filter(|s| per(s.total_ms) >= 0.0005) {
        let text: String = s.query.split_whitespace().collect::<Vec<_>>().join(" ");
        let text: String = text.chars().take(90).collect();
        println!(
            "| `{}` | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} |",
            text.replace('|', "\\|"),
            per(s.calls as f64),
            s.rows as f64 / s.calls.max(1) as f64,
            s.plan_ms * 1000.0 / s.calls.max(1) as f64,
            (s.total_ms - s.plan_ms) * 1000.0 / s.calls.max(1) as f64,
            per(s.total_ms * 1000.0)
        );
    }
}
