//! The SQS endpoint driven by boto3: the pytest suite in `sqs_boto3/` runs
//! against a fresh endpoint once with a current boto3 (AWS JSON 1.0) and
//! once with the last boto3 that speaks the query protocol. `scripts/test`
//! makes both Python environments (`ensure_sqs_clients`, in
//! `target/py/`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use sqlx::PgPool;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

async fn run_suite(pool: PgPool, protocol: &'static str) {
    let python = workspace().join(format!("target/py/sqs-{protocol}/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run `source scripts/lib.sh && ensure_sqs_clients` (scripts/test does)",
        python.display()
    );
    let (url, _) = common::sqs::serve(&pool).await;
    let suite = workspace().join("queue/tests/sqs_boto3");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"])
            .arg(suite)
            .env("SQS_ENDPOINT", url)
            .env("SQS_KEY_ID", common::sqs::KEY_ID)
            .env("SQS_SECRET", common::sqs::SECRET)
            .env("SQS_PROTOCOL", protocol)
            // The endpoint's keys only: none from the environment.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "boto3 suite failed ({protocol})");
    assert!(
        !stdout.contains("skipped"),
        "no test of the suite may be skipped"
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn boto3_over_aws_json_passes_the_suite(pool: PgPool) {
    run_suite(pool, "json").await;
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn boto3_over_the_query_protocol_passes_the_suite(pool: PgPool) {
    run_suite(pool, "query").await;
}
