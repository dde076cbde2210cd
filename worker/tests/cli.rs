//! The `darkroom-worker` binary's command line and start-up errors.

mod support;

use std::process::{Command, Output};

use sqlx::ConnectOptions;
use support::testdata;

fn worker() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_darkroom-worker"));
    for var in [
        "DATABASE_URL",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The stderr of a run that must fail, saying why in one line.
fn one_line_failure(out: Output) -> String {
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn missing_database_url_is_one_clear_line() {
    let stderr = one_line_failure(worker().output().unwrap());
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn unreachable_s3_is_one_clear_line(pool: sqlx::PgPool) {
    // The test's own database, and S3 where nothing listens.
    let database_url: String = pool.connect_options().to_url_lossy().into();
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "y"),
        ("RUST_LOG", "off"),
    ];
    let stderr = one_line_failure(worker().envs(env).output().unwrap());
    assert!(stderr.contains("cannot use bucket"), "{stderr}");
    assert!(stderr.contains("http://127.0.0.1:9"), "{stderr}");
}

#[test]
fn apply_writes_a_thumbnail_in_the_format_of_the_extension() {
    let dir = std::env::temp_dir().join(format!("darkroom-apply-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join("thumb.png");
    let status = worker()
        .args([
            "apply",
            "--op",
            r#"{"op":"thumbnail","width":100,"height":100}"#,
        ])
        .arg(testdata("rocket.jpg"))
        .arg(&out_path)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&out_path).unwrap();
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::Png
    );
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (100, 67));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn apply_rejects_an_invalid_op_naming_it() {
    let out = worker()
        .args(["apply", "--op", r#"{"op":"rotate","degrees":45}"#])
        .arg(testdata("rocket.jpg"))
        .arg("/tmp/never-written.jpg")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("rotate") && stderr.contains("degrees"),
        "{stderr}"
    );
}
