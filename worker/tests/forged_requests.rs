//! Request messages the web would never send, put on the queue directly
//! (as anyone with the queue API or SQS keys could): a worker fails their
//! outputs with the reason instead of processing them, on real Postgres
//! and a real S3 server. Each one's original is a real photo, so a worker
//! that did not check would make an output.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use common::protocol::{self, Outcome, Response, declare_queues};
use common::recipe::Recipe;
use common::storage::{Storage, StorageArgs};
use queue::{Queues, Router};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use worker::runtime::{Worker, WorkerSettings};

/// S3 settings from the environment, with a bucket of the test's own.
fn storage_args() -> StorageArgs {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run the tests through scripts/test");
    StorageArgs {
        endpoint_url: Some(endpoint),
        region: "us-east-1".into(),
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").ok(),
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
        bucket: format!("test-{}", Uuid::new_v4().simple()),
    }
}

/// Sends a request for rocket.jpg with `recipe` (as JSON, unchecked) and
/// runs a worker until it answers; returns its final outcome.
async fn outcome_of_request(pool: PgPool, recipe: Value) -> Outcome {
    let (requests, responses) = declare_queues(&Router::new(Queues::new(pool)))
        .await
        .unwrap();
    let storage = Storage::connect(&storage_args()).await.unwrap();
    let (job_id, image_id) = (Uuid::new_v4(), Uuid::new_v4());
    let source_key = protocol::source_key(job_id, image_id);
    let original = support::photo("rocket.jpg").into();
    storage
        .put(&source_key, original, "image/jpeg")
        .await
        .unwrap();
    let body = json!({
        "job_id": job_id, "image_id": image_id, "image_name": "rocket.jpg",
        "recipe": recipe, "source_key": source_key,
    });
    requests.send(body.to_string()).await.unwrap();

    let mut settings = WorkerSettings {
        concurrency: 1,
        processing_notice: Duration::from_secs(600),
        ..Default::default()
    };
    settings.isolation.program = PathBuf::from(env!("CARGO_BIN_EXE_darkroom-worker"));
    let shutdown = CancellationToken::new();
    let worker = Worker::new(requests, responses.clone(), storage, settings);
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let answer = responses
        .receive_wait(1, Duration::from_secs(60), Duration::from_secs(20))
        .await
        .unwrap();
    shutdown.cancel();
    running.await.unwrap();
    let answer = answer.first().expect("the worker sent no response");
    let response: Response = serde_json::from_str(&answer.body).unwrap();
    assert_eq!((response.job_id, response.image_id), (job_id, image_id));
    response.outcome
}

fn assert_failed_with(outcome: &Outcome, reason: &str) {
    assert!(
        matches!(outcome, Outcome::Failed { error } if error.contains(reason)),
        "{outcome:?}, expected a failure saying {reason:?}"
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn forged_request_with_a_huge_blur_fails_naming_the_field(pool: PgPool) {
    let recipe = json!({"name": "t", "ops": [{"op": "blur", "sigma": 1e30}]});
    let outcome = outcome_of_request(pool, recipe).await;
    assert_failed_with(
        &outcome,
        "recipe.ops[0] (blur).sigma: must be between 0 and 100",
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn forged_request_resizing_past_the_largest_dimension_fails(pool: PgPool) {
    let resize = json!({"op": "resize", "width": 1_000_000, "height": 8, "fit": "fill"});
    let outcome = outcome_of_request(pool, json!({"name": "t", "ops": [resize]})).await;
    assert_failed_with(&outcome, "(resize).width: must be 1 to 16384 pixels");
}

/// An op with a field no op has used to be unreadable as a request, so the
/// message was dropped and its output left queued for ever.
#[sqlx::test(migrator = "common::MIGRATOR")]
async fn forged_request_with_an_unknown_field_fails_rather_than_vanishing(pool: PgPool) {
    let flip = json!({"op": "flip", "axis": "vertical", "shell": "rm -rf /"});
    let outcome = outcome_of_request(pool, json!({"name": "t", "ops": [flip]})).await;
    assert_failed_with(&outcome, "unknown field `shell`");
}

/// Cheap on this photo, but over the budget on the largest image the
/// limits let through, which is what the web judges a recipe on.
#[sqlx::test(migrator = "common::MIGRATOR")]
async fn forged_request_over_the_recipe_budget_fails_as_the_web_would_refuse_it(pool: PgPool) {
    let ops = json!([
        {"op": "blur", "sigma": 20.0},
        {"op": "sharpen", "amount": 1.0},
        {"op": "teeth_whiten", "strength": 0.5}
    ]);
    let recipe: Recipe = serde_json::from_value(json!({"name": "t", "ops": ops})).unwrap();
    assert!(common::Limits::default().check_recipe(&recipe).is_err());
    let outcome = outcome_of_request(pool, json!({"name": "t", "ops": ops})).await;
    assert_failed_with(&outcome, "DARKROOM_MAX_RECIPE_COST");
}

/// What the web does send still goes through.
#[sqlx::test(migrator = "common::MIGRATOR")]
async fn request_the_web_would_send_is_processed(pool: PgPool) {
    let recipe = json!({"name": "t", "ops": [{"op": "thumbnail", "width": 64, "height": 64}]});
    let outcome = outcome_of_request(pool, recipe).await;
    assert!(
        matches!(outcome, Outcome::Done { width: 64, .. }),
        "{outcome:?}"
    );
}
