//! Nothing lost, nothing trusted: service queues keep unprocessed work,
//! expired requests fail their outputs, forged result keys are refused.

mod support;

use std::time::{Duration, Instant};

use common::protocol::{Outcome, REQUEST_QUEUE, RESPONSE_QUEUE, Response};
use common::recipe::OutputFormat;
use queue::{QueueAttributes, Queues};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{TestApp, photo, spawn_app};

fn thumb() -> Value {
    json!([{"name":"t","ops":[{"op":"thumbnail","width":64,"height":64}]}])
}

/// Polls the job until its only output is in a final state.
async fn final_output(app: &TestApp, job: &support::Job) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.job_status(job).await;
        let output = status["images"][0]["outputs"][0].clone();
        if output["state"] == "failed" || output["state"] == "done" {
            return output;
        }
        assert!(Instant::now() < deadline, "never final: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn service_queues_keep_unprocessed_work_forever(pool: PgPool) {
    let _app = spawn_app(pool.clone()).await;
    let queues = Queues::new(pool.clone());
    for name in [
        REQUEST_QUEUE,
        RESPONSE_QUEUE,
        common::protocol::DEAD_REQUEST_QUEUE,
    ] {
        let q = queues.open(name).await.unwrap();
        assert_eq!(q.attributes().retention, None, "{name}");
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
    app.upload(&job, &[("rocket.jpg", photo("rocket.jpg"))])
        .await;
    // No worker runs; the request ages past the retention.
    sqlx::query("update queue_messages set enqueued_at = now() - interval '2 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        queue::Maintenance::new(pool.clone())
            .dead_letter_expired(100)
            .await
            .unwrap(),
        1
    );
    let output = final_output(&app, &job).await;
    assert_eq!(output["state"], "failed", "{output}");
    assert!(
        output["error"].as_str().unwrap().starts_with("expired"),
        "{output}"
    );
    // Kept, for an operator to inspect or redrive.
    let stats = queues
        .open(REQUEST_QUEUE)
        .await
        .unwrap()
        .stats()
        .await
        .unwrap();
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn response_naming_another_outputs_key_is_refused(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(thumb()).await;
    let uploaded: Value = app
        .upload(&job, &[("rocket.jpg", photo("rocket.jpg"))])
        .await
        .json()
        .await
        .unwrap();
    let image_id = uploaded["images"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let forged = Response {
        job_id: job.id.parse().unwrap(),
        image_id,
        recipe: "t".into(),
        outcome: Outcome::Done {
            width: 64,
            height: 43,
            bytes: 1000,
            format: OutputFormat::Jpeg,
            key: format!(
                "jobs/{}/originals/{}",
                uuid::Uuid::new_v4(),
                uuid::Uuid::new_v4()
            ),
        },
    };
    Queues::new(pool.clone())
        .open(RESPONSE_QUEUE)
        .await
        .unwrap()
        .send(serde_json::to_string(&forged).unwrap())
        .await
        .unwrap();
    let output = final_output(&app, &job).await;
    assert_eq!(output["state"], "failed", "{output}");
    assert!(
        output["error"].as_str().unwrap().contains("refused"),
        "{output}"
    );
    let stored: Option<String> = sqlx::query_scalar("select storage_key from outputs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, None);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn the_queue_alone_migrates_a_database_it_shares_with_the_app(pool: PgPool) {
    // `darkroom-queue` applies only the queue's migrations; the app's, also
    // recorded there, must not stop it.
    queue::MIGRATOR.run(&pool).await.unwrap();
    common::MIGRATOR.run(&pool).await.unwrap();
}
