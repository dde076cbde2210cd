//! The UI in a real headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `web/tests/browser/`): web in process, one worker
//! process, real Postgres and S3. `scripts/test` installs Chromium and the
//! npm package; the screenshot lands in `target/browser/ui.png`.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sqlx::PgPool;
use support::{TestApp, app_with, spawn_app, spawn_worker};

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn browser_uploads_photos_watches_them_develop_and_downloads_one(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let stdout = run_ui(&app, &pool, "ui.png", false).await;
    assert!(stdout.contains("ok: 12 outputs done"), "{stdout}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn browser_follows_a_job_by_polling_when_its_stream_is_refused(pool: PgPool) {
    let app = app_with(pool.clone(), |s| s.max_streams_per_client = 0).await;
    let stdout = run_ui(&app, &pool, "ui-polling.png", true).await;
    assert!(stdout.contains("ok: 12 outputs done"), "{stdout}");
    assert!(stdout.contains("progress streams refused: 1"), "{stdout}");
}

/// Runs `ui.mjs` against `app` with one worker; its screenshot is `shot`,
/// and `streams_refused` tells it the progress stream will be refused.
async fn run_ui(app: &TestApp, pool: &PgPool, shot: &str, streams_refused: bool) -> String {
    let _worker = spawn_worker(pool, &app.storage_args);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        PathBuf::from(&chromium).exists(),
        "no Chromium at {chromium}: apt-get install chromium (scripts/test does)"
    );
    let shots = root.join("../target/browser");
    let run = tokio::process::Command::new("node")
        .arg(dir.join("ui.mjs"))
        .arg(app.url("/"))
        .arg(&shots)
        .arg(root.join("../testdata"))
        .arg(shot)
        .env("CHROMIUM", &chromium)
        .env("STREAMS_REFUSED", if streams_refused { "1" } else { "" })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser test took over 4 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed (screenshot: {}/{shot} as ui-failure)\n{stdout}\n{stderr}",
        shots.display()
    );
    stdout.into_owned()
}
