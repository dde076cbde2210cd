//! The workspace's binaries as child processes of a test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::storage::StorageArgs;
use sqlx::PgPool;

use super::database_url;

/// A binary of this workspace, built next to the test executable.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// A release binary of this workspace, for tests whose timing an
/// unoptimised build would decide (the chaos suite).
pub fn release_bin(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/release")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release --bins` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// Runs `cmd` to its end, which must be a success (else its stderr is
/// shown); what it wrote.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A child process killed when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Points a child process at the test's database and at `storage`.
pub fn test_env<'a>(cmd: &'a mut Command, pool: &PgPool, storage: &StorageArgs) -> &'a mut Command {
    cmd.env("DATABASE_URL", database_url(pool))
        .env("AWS_ENDPOINT_URL", storage.endpoint_url.as_deref().unwrap())
        .env("DARKROOM_BUCKET", &storage.bucket)
        .stdin(Stdio::null())
}

/// Starts a `darkroom-worker` process on the test's database and bucket.
pub fn spawn_worker(pool: &PgPool, storage: &StorageArgs) -> ChildGuard {
    let mut cmd = Command::new(workspace_bin("darkroom-worker"));
    let child = test_env(&mut cmd, pool, storage)
        .env("DARKROOM_WORKER_CONCURRENCY", "2")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start darkroom-worker");
    ChildGuard(child)
}
