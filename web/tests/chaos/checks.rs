//! What the suite checks after each phase, and what it counts, from the
//! database and the bucket: every output final with its one result object
//! decoding to the recorded size, no request left behind, and the outputs
//! recorded, reported or started more than once.

use sqlx::PgPool;

use crate::RECIPES;
use crate::client::Client;
use crate::support::{self, Job};

/// Checks the finished job of `expected` images against everything the
/// product promises, and returns (done, failed).
pub async fn verify(
    client: &Client,
    pool: &PgPool,
    s3: &common::storage::Storage,
    job: &Job,
    expected: usize,
) -> (usize, usize) {
    let status = client.wait_done(job).await;
    let images = status["images"].as_array().unwrap();
    assert_eq!(images.len(), expected, "images recorded");
    let (mut done, mut failed) = (0, 0);
    for image in images {
        let name = image["name"].as_str().unwrap();
        let broken = name.starts_with("truncated") || name.starts_with("scrambled");
        let outputs = image["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), RECIPES, "{name}: one output per recipe");
        for output in outputs {
            if broken {
                assert_eq!(output["state"], "failed", "{name}: {output}");
                let error = output["error"].as_str().unwrap();
                assert!(
                    error.contains("corrupt") || error.contains("truncated"),
                    "{name}: unclear error {error:?}"
                );
                failed += 1;
                continue;
            }
            assert_eq!(output["state"], "done", "{name}: {output}");
            let bytes = client.download(job, output["url"].as_str().unwrap()).await;
            let img = image::load_from_memory(&bytes)
                .unwrap_or_else(|e| panic!("{name} {}: does not decode: {e}", output["recipe"]));
            assert_eq!(
                (u64::from(img.width()), u64::from(img.height())),
                (
                    output["width"].as_u64().unwrap(),
                    output["height"].as_u64().unwrap()
                ),
                "{name} {}",
                output["recipe"]
            );
            done += 1;
        }
    }

    // Exactly one result object per done output: nothing stray, nothing
    // written twice under another key.
    assert_eq!(result_objects(s3, job).await, done, "result objects in S3");

    // Nothing left behind: no request waiting, leased or dead-lettered.
    let left = support::scalar(
        pool,
        "select coalesce(sum(cardinality(m.ids)), 0)::int8
         from queue_messages m join queue_queues q on q.id = m.queue_id
         where q.name in ('darkroom.requests', 'darkroom.requests.dead')",
    )
    .await;
    assert_eq!(left, 0, "request messages left behind");
    (done, failed)
}

pub async fn result_objects(s3: &common::storage::Storage, job: &Job) -> usize {
    let prefix = format!("jobs/{}/outputs/", job.id);
    s3.list(&prefix).await.unwrap().len()
}

/// Outputs of this job with more than one response in `state`, counted from
/// the responses the queue keeps for rewinding: `processing` twice is work
/// started again (a worker killed or cut off before its delete, or a retry
/// through an outage); a final state twice is a result reported twice.
pub async fn responses_per_output_over_one(pool: &PgPool, job: &Job, state: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from (
             select 1 from queue_chunks c join queue_queues q on q.id = c.queue_id
             cross join unnest(c.bodies) as b(body)
             where q.name = 'darkroom.responses' and b.body::jsonb ->> 'job_id' = $1
               and b.body::jsonb ->> 'state' = $2
             group by b.body::jsonb ->> 'image_id', b.body::jsonb ->> 'recipe'
             having count(*) > 1) twice",
    )
    .bind(&job.id)
    .bind(state)
    .fetch_one(pool)
    .await
    .unwrap_or(-1)
}

/// Outputs of this job with more than one row.
pub async fn outputs_recorded_twice(pool: &PgPool, job: &Job) -> i64 {
    sqlx::query_scalar(
        "select count(*) from (
             select 1 from outputs where job_id = $1::uuid
             group by image_id, recipe having count(*) > 1) twice",
    )
    .bind(&job.id)
    .fetch_one(pool)
    .await
    .unwrap_or(-1)
}

/// Outputs of this job reported done or failed more than once.
pub async fn reported_final_twice(pool: &PgPool, job: &Job) -> i64 {
    responses_per_output_over_one(pool, job, "done").await
        + responses_per_output_over_one(pool, job, "failed").await
}
