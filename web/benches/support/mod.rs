//! What the web benches share: a database of their own, the release
//! `darkroom-web` on a free port, and CPU readings from /proc.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "darkroom-web did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (web, base)
}

/// CPU seconds (user + system) of a process (`"self"` or a pid), or with
/// `children`, of its waited-for children.
pub fn cpu_secs(pid: &str, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name, in clock ticks (100/s):
    // utime, stime, cutime, cstime are the 12th to 15th.
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let at = if children { 13 } else { 11 };
    (f[at].parse::<f64>().unwrap() + f[at + 1].parse::<f64>().unwrap()) / 100.0
}

/// CPU seconds of every running process whose command name is one of
/// `names` (e.g. all of Postgres' backends; ended ones are not counted).
pub fn cpu_secs_named(names: &[&str]) -> f64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid = e.ok()?.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            names.contains(&comm.trim()).then(|| cpu_secs(&pid, false))
        })
        .sum()
}

/// CPU seconds used so far by the S3 server (s3s-fs or MinIO).
pub fn s3_cpu_secs() -> f64 {
    cpu_secs_named(&["s3s-fs", "minio"])
}
