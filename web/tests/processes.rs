//! The `darkroom-web` and `darkroom-worker` binaries: start-up errors and
//! graceful shutdown on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use support::{
    ChildGuard, database_url, ensure_role, run_ok, storage_args, test_env, workspace_bin,
};

fn web() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_darkroom-web"));
    cmd.env_remove("DATABASE_URL").stdin(Stdio::null());
    cmd
}

/// Runs `cmd`, which must fail; returns what it wrote to stderr.
fn failure(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{cmd:?}: {stderr}");
    stderr
}

/// Runs `cmd`, which must fail with a message of one line; returns it.
fn one_line_failure(cmd: &mut Command) -> String {
    let stderr = failure(cmd);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// Sends SIGTERM to the child and waits for it to exit, failing after
/// `limit`; asserts it exited successfully.
fn terminate(child: &mut std::process::Child, limit: Duration) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn web_without_database_url_says_so_in_one_line() {
    let stderr = one_line_failure(&mut web());
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn web_with_unreachable_s3_says_so_in_one_line(pool: PgPool) {
    let stderr = one_line_failure(web().env("DATABASE_URL", database_url(&pool)).envs([
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "y"),
        ("RUST_LOG", "off"),
    ]));
    assert!(
        stderr.contains("cannot use bucket") && stderr.contains("127.0.0.1:9"),
        "{stderr}"
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn web_stops_cleanly_on_sigterm(pool: PgPool) {
    let mut cmd = web();
    let listeners = [
        ("DARKROOM_BIND", "127.0.0.1:0"),
        ("DARKROOM_ADMIN_BIND", "127.0.0.1:0"),
        ("RUST_LOG", "warn"),
    ];
    test_env(&mut cmd, &pool, &storage_args()).envs(listeners);
    let mut child = ChildGuard(cmd.stdout(Stdio::piped()).spawn().unwrap());
    // Held until the end: the server writes more lines, and a closed pipe
    // would fail it.
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("Darkroom is up: http://127.0.0.1:"),
        "{line}"
    );
    terminate(&mut child.0, Duration::from_secs(10));
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn worker_stops_cleanly_on_sigterm(pool: PgPool) {
    let mut cmd = Command::new(workspace_bin("darkroom-worker"));
    let logs = [("DARKROOM_LOG_JSON", "true"), ("RUST_LOG", "info")];
    test_env(&mut cmd, &pool, &storage_args()).envs(logs);
    let mut child = ChildGuard(cmd.stderr(Stdio::piped()).spawn().unwrap());
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let started = lines
        .by_ref()
        .map(Result::unwrap)
        .any(|l| l.contains("worker started"));
    assert!(started, "worker never logged that it started");
    terminate(&mut child.0, Duration::from_secs(10));
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        rest.iter().any(|l| l.contains("worker stopping")),
        "{rest:?}"
    );
}

#[test]
fn web_refuses_to_start_with_a_well_known_admin_token() {
    for token in ["change-me", "short", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let stderr = failure(
            web()
                .env("DATABASE_URL", "postgres://127.0.0.1:9/never-reached")
                .env("DARKROOM_ADMIN_TOKEN", token),
        );
        assert!(
            stderr.contains("DARKROOM_ADMIN_TOKEN is") && stderr.contains("openssl rand"),
            "{token}: {stderr}"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn web_migrate_applies_the_schema_grants_the_scaler_and_exits(pool: PgPool) {
    ensure_role(&pool, "darkroom_scaler_test").await;
    run_ok(
        web()
            .arg("migrate")
            .env("DATABASE_URL", database_url(&pool))
            .env("DARKROOM_SCALER_DB_ROLE", "darkroom_scaler_test")
            .env("RUST_LOG", "warn"),
    );

    // The queues are declared, and the scaler's role reads their backlog.
    let mut scaler = pool.acquire().await.unwrap();
    sqlx::raw_sql("set role darkroom_scaler_test")
        .execute(&mut *scaler)
        .await
        .unwrap();
    let backlog: i64 =
        sqlx::query_scalar("select visible from queue_backlog where name = 'darkroom.requests'")
            .fetch_one(&mut *scaler)
            .await
            .unwrap();
    assert_eq!(backlog, 0);
    sqlx::raw_sql("reset role")
        .execute(&mut *scaler)
        .await
        .unwrap();
}
