//! The UI in a real headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `web/tests/browser/`, checked by axe-core): web in
//! process, one worker process, real Postgres and S3. `scripts/test`
//! installs Chromium and the npm packages; screenshots land in
//! `target/browser/` (the README shows copies from `docs/ui/`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::PgPool;
use support::{TestApp, app_with, spawn_app, spawn_worker};

/// Photos in the many-photos test, each with two recipes.
const MANY: usize = 200;

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn browser_shows_hundreds_of_results_lazily_without_long_tasks_and_views_them(pool: PgPool) {
    // Rates high enough for one client to send 200 photos at once.
    let app = app_with(pool.clone(), |s| {
        s.rates.work_per_minute = 0;
        s.rates.requests_per_second = 0;
    })
    .await;
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser/many");
    many_photos(&folder, MANY);
    let stdout = run_script(&app, &pool, "hundreds.mjs", &folder, &[], &[]).await;
    assert!(
        stdout.contains(&format!("ok: {} results", 2 * MANY)),
        "{stdout}"
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn browser_retries_a_failure_adds_recipes_remembers_the_job_and_deletes_it(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let photos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let stdout = run_script(&app, &pool, "job_life.mjs", &photos, &[], &[]).await;
    assert!(stdout.contains("ok: retried"), "{stdout}");
    let jobs = support::scalar(&pool, "select count(*) from jobs").await;
    assert_eq!(jobs, 0, "the deleted job is still there");
}

/// `n` photos in `folder`: the real test photos in turn, each copy cropped
/// a little differently so that no two files are alike, as JPEGs of 400 to
/// 600 pixels: quick for one worker to make two results of each.
fn many_photos(folder: &Path, n: usize) {
    let _ = std::fs::remove_dir_all(folder);
    std::fs::create_dir_all(folder).unwrap();
    let testdata = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let originals: Vec<(&str, image::RgbImage)> =
        ["rocket.jpg", "chelsea.png", "coffee.png", "astronaut.png"]
            .into_iter()
            .map(|name| (name, image::open(testdata.join(name)).unwrap().to_rgb8()))
            .collect();
    for i in 0..n {
        let (name, photo) = &originals[i % originals.len()];
        let cut = (i / originals.len()) as u32 % 40;
        let (w, h) = photo.dimensions();
        let copy = image::imageops::crop_imm(photo, cut, cut, w - 2 * cut, h - 2 * cut).to_image();
        let stem = name.split('.').next().unwrap();
        copy.save(folder.join(format!("{i:03}-{stem}.jpg")))
            .unwrap();
    }
}

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
    let photos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let refused = if streams_refused { "1" } else { "" };
    let env = [("STREAMS_REFUSED", refused)];
    run_script(app, pool, "ui.mjs", &photos, &[shot], &env).await
}

/// Runs `script` of `tests/browser/` against `app` with one worker, giving
/// it the app's URL, the screenshot folder (`target/browser/`), `photos`
/// and `more` as arguments and `env` in its environment; returns what it
/// printed, failing the test if it failed.
async fn run_script(
    app: &TestApp,
    pool: &PgPool,
    script: &str,
    photos: &Path,
    more: &[&str],
    env: &[(&str, &str)],
) -> String {
    let _worker = spawn_worker(pool, &app.storage_args);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    for package in ["playwright-core", "axe-core"] {
        assert!(
            dir.join("node_modules").join(package).exists(),
            "{package} is not installed: run `npm ci` in {} (scripts/test does)",
            dir.display()
        );
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        PathBuf::from(&chromium).exists(),
        "no Chromium at {chromium}: apt-get install chromium (scripts/test does)"
    );
    let shots = root.join("../target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let run = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .arg(app.url("/"))
        .arg(&shots)
        .arg(photos)
        .args(more)
        .env("CHROMIUM", &chromium)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(480), run)
        .await
        .expect("the browser test took over 8 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Its figures (longest task, heap, axe) in the log of a run with --nocapture.
    println!("{script}: {stdout}");
    assert!(
        out.status.success(),
        "browser test {script} failed (screenshot of the failure in {})\n{stdout}\n{stderr}",
        shots.display()
    );
    stdout.into_owned()
}
