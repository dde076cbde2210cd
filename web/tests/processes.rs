//! The `darkroom-web` and `darkroom-worker` binaries: start-up errors and
//! graceful shutdown on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use support::{ChildGuard, database_url, storage_args, workspace_bin};

fn web() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_darkroom-web"));
    cmd.env_remove("DATABASE_URL").stdin(Stdio::null());
    cmd
}

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, failing after `limit`.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn web_without_database_url_says_so_in_one_line() {
    let out = web().output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn web_with_unreachable_s3_says_so_in_one_line(pool: PgPool) {
    let out = web()
        .env("DATABASE_URL", database_url(&pool))
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot use bucket") && stderr.contains("127.0.0.1:9"),
        "{stderr}"
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn web_stops_cleanly_on_sigterm(pool: PgPool) {
    let s3 = storage_args();
    let mut child = ChildGuard(
        web()
            .env("DATABASE_URL", database_url(&pool))
            .env("AWS_ENDPOINT_URL", s3.endpoint_url.as_deref().unwrap())
            .env("DARKROOM_BUCKET", &s3.bucket)
            .env("DARKROOM_BIND", "127.0.0.1:0")
            .env("DARKROOM_ADMIN_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("Darkroom is up: http://127.0.0.1:"),
        "{line}"
    );
    sigterm(child.0.id());
    let status = wait_exit(&mut child.0, Duration::from_secs(10));
    assert!(status.success(), "{status}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn worker_stops_cleanly_on_sigterm(pool: PgPool) {
    let s3 = storage_args();
    let mut child = ChildGuard(
        Command::new(workspace_bin("darkroom-worker"))
            .env("DATABASE_URL", database_url(&pool))
            .env("AWS_ENDPOINT_URL", s3.endpoint_url.as_deref().unwrap())
            .env("DARKROOM_BUCKET", &s3.bucket)
            .env("DARKROOM_LOG_JSON", "true")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let started = lines
        .by_ref()
        .map(Result::unwrap)
        .any(|l| l.contains("worker started"));
    assert!(started, "worker never logged that it started");
    sigterm(child.0.id());
    let status = wait_exit(&mut child.0, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        rest.iter().any(|l| l.contains("worker stopping")),
        "{rest:?}"
    );
}

#[test]
fn web_refuses_to_start_with_a_well_known_admin_token() {
    for token in ["change-me", "short", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let out = web()
            .env("DATABASE_URL", "postgres://127.0.0.1:9/never-reached")
            .env("DARKROOM_ADMIN_TOKEN", token)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{token}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("DARKROOM_ADMIN_TOKEN is") && stderr.contains("openssl rand"),
            "{token}: {stderr}"
        );
    }
}
