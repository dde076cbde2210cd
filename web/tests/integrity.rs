//! Nothing lost, nothing trusted: service queues keep unprocessed work,
//! expired requests fail their outputs, forged result keys are refused.

mod support;

use std::time::Duration;

use common::protocol::{DEAD_REQUEST_QUEUE, Outcome, REQUEST_QUEUE, RESPONSE_QUEUE, Response};
use queue::{QueueAttributes, Queues};
use serde_json::Value;
use sqlx::PgPool;
use support::{TestApp, assert_error, done_response, first_output, poll, spawn_app, thumbnail};
use uuid::Uuid;

fn thumb() -> Value {
    thumbnail("t", 64)
}

/// Polls the job until its only output is in a final state.
async fn final_output(app: &TestApp, job: &support::Job) -> Value {
    poll(Duration::from_secs(30), async || {
        let status = app.job_status(job).await;
        let output = first_output(&status);
        match output["state"] == "failed" || output["state"] == "done" {
            true => Ok(output.clone()),
            false => Err(format!("never final: {status}")),
        }
    })
    .await
}

/// A job of one uploaded image, and the `done` response a worker would send
/// for its output.
async fn job_and_done_response(app: &TestApp) -> (support::Job, Response) {
    let job = app.create_job(thumb()).await;
    let image_id = app.upload_accepted(&job, "rocket.jpg").await;
    let (job_id, image_id) = (job.id.parse().unwrap(), image_id.parse().unwrap());
    let key = common::protocol::output_key(job_id, image_id, "t");
    (job, done_response(job_id, image_id, "t", &key))
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_retention_set_on_responses_or_dead_letters_is_removed_at_start_up(pool: PgPool) {
    let first = spawn_app(pool.clone()).await;
    drop(first);
    // An operator gives every service queue a retention between two starts.
    let queues = Queues::new(pool.clone());
    let services = [REQUEST_QUEUE, RESPONSE_QUEUE, DEAD_REQUEST_QUEUE];
    for name in services {
        let q = queues.open(name).await.unwrap();
        let attributes = QueueAttributes {
            retention: Some(Duration::from_secs(60)),
            ..q.attributes().clone()
        };
        queues.put(name, &attributes).await.unwrap();
    }
    let _app = spawn_app(pool.clone()).await;
    for name in services {
        let kept = queues.open(name).await.unwrap().attributes().retention;
        // The requests' may stay: theirs expire into the dead letters.
        let expected = (name == REQUEST_QUEUE).then_some(Duration::from_secs(60));
        assert_eq!(kept, expected, "{name}");
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn requests_past_an_operators_retention_fail_their_outputs_as_expired(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let queues = Queues::new(pool.clone());
    // An operator gives the request queue the shortest retention there is.
    let requests = queues.open(REQUEST_QUEUE).await.unwrap();
    let attributes = QueueAttributes {
        retention: Some(Duration::from_secs(60)),
        ..requests.attributes().clone()
    };
    queues.put(REQUEST_QUEUE, &attributes).await.unwrap();
    let job = app.create_job(thumb()).await;
    app.upload_one(&job, "rocket.jpg").await;
    // No worker runs; the request ages past the retention.
    support::sql(
        &pool,
        "update queue_messages set enqueued_at = now() - interval '2 minutes'",
    )
    .await;
    let maintenance = queue::Maintenance::new(pool.clone());
    assert_eq!(maintenance.dead_letter_expired(100).await.unwrap(), 1);
    let output = final_output(&app, &job).await;
    assert_eq!(output["state"], "failed", "{output}");
    let error = output["error"].as_str().unwrap();
    assert!(error.starts_with("expired"), "{output}");
    // Kept, for an operator to inspect or redrive.
    let stats = support::request_stats(&pool).await;
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn response_naming_another_outputs_key_is_refused(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(thumb()).await;
    let image_id = app.upload_accepted(&job, "rocket.jpg").await;
    // Done, it says, but stored under another job's original.
    let key = format!("jobs/{}/originals/{}", Uuid::new_v4(), Uuid::new_v4());
    let (job_id, image_id) = (job.id.parse().unwrap(), image_id.parse().unwrap());
    support::send_responses(&pool, &[done_response(job_id, image_id, "t", &key)]).await;
    let output = final_output(&app, &job).await;
    assert_eq!(output["state"], "failed", "{output}");
    assert_error(&output, &["refused"]);
    let stored: Option<String> = sqlx::query_scalar("select storage_key from outputs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, None);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn responses_for_one_output_in_one_batch_settle_on_the_highest_state(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (job, done) = job_and_done_response(&app).await;
    let processing = Response {
        outcome: Outcome::Processing,
        ..done.clone()
    };
    // A redelivered request's responses, late and out of order, consumed
    // together: one statement applies them, and only `done` may count.
    support::send_responses(&pool, &[done.clone(), processing, done]).await;
    let output = final_output(&app, &job).await;
    assert_eq!(output["state"], "done", "{output}");
    // Event 1 was the output's creation; one change, to done, took the next.
    let event: i64 = sqlx::query_scalar("select event from outputs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(event, 2);
    let left = queue::Queues::new(pool.clone())
        .open(RESPONSE_QUEUE)
        .await
        .unwrap()
        .stats()
        .await
        .unwrap();
    assert_eq!((left.visible, left.in_flight), (0, 0), "{left:?}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn response_the_database_refuses_does_not_hold_back_its_batch(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (job, good) = job_and_done_response(&app).await;
    // Postgres text cannot hold a NUL: this one fails any statement it is in.
    let poison = Response {
        recipe: "t\u{0}".into(),
        ..good.clone()
    };
    support::send_responses(&pool, &[poison, good]).await;
    let output = final_output(&app, &job).await;
    assert_eq!(output["state"], "done", "{output}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn the_queue_alone_migrates_a_database_it_shares_with_the_app(pool: PgPool) {
    // `darkroom-queue` applies only the queue's migrations; the app's, also
    // recorded there, must not stop it.
    queue::MIGRATOR.run(&pool).await.unwrap();
    common::MIGRATOR.run(&pool).await.unwrap();
}
