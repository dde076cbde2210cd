//! The `darkroom-worker` binary's command line and start-up errors.

use std::path::PathBuf;
use std::process::Command;

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

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

#[test]
fn missing_database_url_is_one_clear_line() {
    let out = worker().output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
}

/// The URL of the test's own database, for the child process.
fn database_url(pool: &sqlx::PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set by sqlx::test");
    let db = pool
        .connect_options()
        .get_database()
        .expect("test database name")
        .to_owned();
    match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{db}"),
        None => panic!("DATABASE_URL has no database: {base}"),
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn unreachable_s3_is_one_clear_line(pool: sqlx::PgPool) {
    let out = worker()
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
