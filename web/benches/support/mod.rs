//! What the web benches share: a database of their own, the release
//! `darkroom-web` on a free port, and CPU readings from /proc.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A release binary of this workspace, which the bench's script builds.
pub fn release_bin(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/release")
        .join(name);
    assert!(
        bin.exists(),
        "build it first: cargo build --release --bin {name}"
    );
    bin
}

/// Drops and creates `name` on the server of DATABASE_URL; returns its URL.
pub async fn fresh_database(name: &str) -> url::Url {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let admin: PgConnectOptions = url.parse().unwrap();
    let mut conn = admin.connect().await.unwrap();
    for q in [
        format!("drop database if exists {name} with (force)"),
        format!("create database {name}"),
    ] {
        sqlx::query(&q).execute(&mut conn).await.unwrap();
    }
    let mut db_url = url::Url::parse(&url).unwrap();
    db_url.set_path(name);
    db_url
}

/// Starts the release `darkroom-web` on a free port, with `env` applied
/// (database, bucket, ...), and waits until it answers; returns it and its
/// base URL. It migrates its database at start-up.
pub async fn start_web(env: impl Fn(&mut Command)) -> (Guard, String) {
    let port = free_port();
    let mut cmd = Command::new(release_bin("darkroom-web"));
    env(&mut cmd);
    let web = Guard(
        cmd.env("DARKROOM_BIND", format!("127.0.0.1:{port}"))
            .env("DARKROOM_ADMIN_BIND", "127.0.0.1:0")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(
        &format!("{base}/healthz"),
        "darkroom-web",
        Duration::from_secs(30),
    )
    .await;
    (web, base)
}

/// A TCP port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to `limit` until `url` answers at all; `what` names the server.
pub async fn wait_until_up(url: &str, what: &str, limit: Duration) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    while client.get(url).send().await.is_err() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The median of `v` (reordered).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Starts `n` release `darkroom-worker`s, each with `env` applied.
pub fn start_workers(n: usize, env: impl Fn(&mut Command)) -> Vec<Guard> {
    (0..n)
        .map(|_| {
            let mut cmd = Command::new(release_bin("darkroom-worker"));
            env(&mut cmd);
            Guard(cmd.spawn().unwrap())
        })
        .collect()
}

/// A job on the server: its id and token.
#[derive(Clone)]
pub struct Job {
    pub id: String,
    pub token: String,
}

/// One recipe, `thumb`: a thumbnail that fits in 256×256.
pub fn thumbnail_recipes() -> Value {
    json!([{"name": "thumb", "ops": [{"op": "thumbnail", "width": 256, "height": 256}]}])
}

/// Asks the server at `base` for a job of `recipes`. Refused, it is the
/// status of the answer; 0 when there was none.
pub async fn create_job(client: &reqwest::Client, base: &str, recipes: &Value) -> Result<Job, u16> {
    create_job_from(client, base, &json!({ "recipes": recipes })).await
}

/// Creates a job from a whole request body (recipes, webhook); Err holds the
/// status (0: no answer).
pub async fn create_job_from(
    client: &reqwest::Client,
    base: &str,
    body: &Value,
) -> Result<Job, u16> {
    let req = client.post(format!("{base}/api/jobs"));
    let res = req.json(body).send().await;
    let res = res.map_err(|_| 0u16)?;
    if res.status() != 201 {
        return Err(res.status().as_u16());
    }
    let body: Value = res.json().await.map_err(|_| 0u16)?;
    Ok(Job {
        id: body["id"].as_str().unwrap().to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    })
}

/// A multipart form of `parts`, each a `file`.
pub fn form(parts: impl IntoIterator<Item = Part>) -> Form {
    parts
        .into_iter()
        .fold(Form::new(), |form, part| form.part("file", part))
}

/// Uploads `form` to the job.
pub async fn upload(
    client: &reqwest::Client,
    base: &str,
    job: &Job,
    form: Form,
) -> reqwest::Result<reqwest::Response> {
    let url = format!("{base}/api/jobs/{}/images", job.id);
    client
        .post(url)
        .bearer_auth(&job.token)
        .multipart(form)
        .send()
        .await
}

/// GET `/api/jobs/{id}` followed by `rest`, with the job's token.
pub async fn job_get(
    client: &reqwest::Client,
    base: &str,
    job: &Job,
    rest: &str,
) -> reqwest::Result<reqwest::Response> {
    let url = format!("{base}/api/jobs/{}{rest}", job.id);
    client.get(url).bearer_auth(&job.token).send().await
}

/// Peak resident memory of a process, in MB (0 once it is gone).
pub fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) of a process (`"self"` or a pid), or with
/// `children`, of its waited-for children.
pub fn cpu_secs(pid: &str, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat_cpu_secs(&stat, children)
}

fn stat_cpu_secs(stat: &str, children: bool) -> f64 {
    // Fields after the parenthesised command name, in clock ticks (100/s):
    // utime, stime, cutime, cstime are the 12th to 15th.
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let at = if children { 13 } else { 11 };
    (f[at].parse::<f64>().unwrap() + f[at + 1].parse::<f64>().unwrap()) / 100.0
}

/// CPU seconds of every running process whose command name is one of
/// `names` (e.g. all of Postgres' backends; ended ones are not counted,
/// nor one that ends while they are read).
pub fn cpu_secs_named(names: &[&str]) -> f64 {
    pids_named(names)
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| stat_cpu_secs(&stat, false))
        .sum()
}

/// Pids of every running process whose command name is one of `names`.
pub fn pids_named(names: &[&str]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().into_string().ok()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            names.contains(&comm.trim()).then_some(pid)
        })
        .collect()
}

/// The S3 server's command names (s3s-fs or MinIO).
pub const S3_SERVERS: &[&str] = &["s3s-fs", "minio"];

/// CPU seconds used so far by the S3 server.
pub fn s3_cpu_secs() -> f64 {
    cpu_secs_named(S3_SERVERS)
}

/// Marks the benches' own statements, so that figures can leave them out.
pub const OURS: &str = "/* bench */";

/// What Postgres has counted so far in the database of `pool`.
#[derive(Debug, Clone, Copy)]
pub struct DbCounters {
    /// Transactions, committed or rolled back.
    pub xacts: i64,
    /// Rows inserted, updated or deleted.
    pub rows: i64,
    /// WAL bytes written by the whole server.
    pub wal: i64,
}

/// Reads [`DbCounters`] (two statements of ours, each a transaction).
pub async fn db_counters(pool: &sqlx::PgPool) -> DbCounters {
    // Statistics are cached per transaction and flushed lazily.
    sqlx::query(&format!("{OURS} select pg_stat_clear_snapshot()"))
        .execute(pool)
        .await
        .unwrap();
    let (xacts, rows, wal): (i64, i64, i64) = sqlx::query_as(&format!(
        "{OURS} select xact_commit + xact_rollback,
                tup_inserted + tup_updated + tup_deleted,
                pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8
         from pg_stat_database where datname = current_database()"
    ))
    .fetch_one(pool)
    .await
    .unwrap();
    DbCounters { xacts, rows, wal }
}

/// How many outputs of `job` are final (done or failed).
pub async fn finished(pool: &sqlx::PgPool, job: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "{OURS} select count(*) from outputs \
         where job_id = $1::uuid and state in ('done', 'failed')"
    ))
    .bind(job)
    .fetch_one(pool)
    .await
    .unwrap()
}
