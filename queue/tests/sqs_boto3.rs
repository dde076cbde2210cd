//! The SQS endpoint driven by boto3: the pytest suite in `sqs_boto3/` runs
//! against a fresh endpoint once with a current boto3 (AWS JSON 1.0) and
//! once with the last boto3 that speaks the query protocol. `scripts/test`
//! makes both Python environments (`ensure_sqs_clients`, in
//! `target/py/`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use queue::{Queues, Router};
use sqlx::PgPool;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The application name of the woken-only endpoint's connections, which
/// tells its LISTEN from the other endpoint's.
const WOKEN_ONLY: &str = "darkroom-sqs-woken-only";

/// A second endpoint, whose receives only a NOTIFY wakes in time (see
/// `common::NO_FALLBACK`), and a URL answering how many LISTEN connections
/// it has open to the test's database: the suite's long-poll test sends
/// once its receive is registered for wake-ups, which it is before its
/// endpoint's listener starts.
async fn serve_woken_only(pool: &PgPool) -> (String, String) {
    let options = pool.connect_options().as_ref().clone();
    let own = sqlx::postgres::PgPoolOptions::new()
        .connect_with(options.application_name(WOKEN_ONLY))
        .await
        .unwrap();
    let queues = Queues::new(own).with_fallback_poll(common::NO_FALLBACK);
    let (url, _) = testkit::sqs::serve_router(Router::new(queues)).await;
    let pool = pool.clone();
    let probe = axum::Router::new().route(
        "/listening",
        axum::routing::get(move || {
            let pool = pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar(
                    "select count(*) from pg_stat_activity
                     where datname = current_database() and application_name = $1
                       and query like 'LISTEN%'",
                )
                .bind(WOKEN_ONLY)
                .fetch_one(&pool)
                .await
                .unwrap();
                n.to_string()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listening = format!("http://{}/listening", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, probe).await.unwrap() });
    (url, listening)
}

async fn run_suite(pool: PgPool, protocol: &'static str) {
    let python = workspace().join(format!("target/py/sqs-{protocol}/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run `source scripts/lib.sh && ensure_sqs_clients` (scripts/test does)",
        python.display()
    );
    let (url, _) = testkit::sqs::serve(&pool).await;
    let (woken_only, listening) = serve_woken_only(&pool).await;
    let suite = workspace().join("queue/tests/sqs_boto3");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"])
            .arg(suite)
            .env("SQS_ENDPOINT", url)
            .env("SQS_WOKEN_ONLY_ENDPOINT", woken_only)
            .env("SQS_LISTENING_URL", listening)
            .env("SQS_KEY_ID", testkit::sqs::KEY_ID)
            .env("SQS_SECRET", testkit::sqs::SECRET)
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
