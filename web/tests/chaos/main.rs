//! Chaos suite: the whole fleet as separate processes (a Postgres cluster of
//! the test's own, an S3 server, `darkroom-web`, three `darkroom-worker`s)
//! and the failures the product promises to survive, one phase each:
//!
//! 1. the batch is uploaded while no worker runs, with corrupt files and
//!    decompression bombs mixed in; workers start later;
//! 2. a random worker is killed with SIGKILL every 1–3 s and restarted, at
//!    least 15 times, batches uploaded until then;
//! 3. Postgres is stopped for 10 s mid-run, then started again;
//! 4. the S3 server is stopped for 10 s mid-run, then started again.
//!
//! After every phase: each output is `done` or (for the corrupt files)
//! `failed` with a clear error, exactly one result object per done output
//! and it decodes to the recorded size, no output recorded twice, no
//! request left in the queue, none dead-lettered. The figures, each counted
//! from the database and the bucket, are printed at the end.
//!
//! The fleet runs the release binaries (`scripts/test` builds them): debug
//! builds are slow enough that timing, not the product, decides a phase.
//!
//! The Postgres cluster is private so that stopping it disturbs nothing
//! else; the outage durations are the scenario itself, not waits for state.

#[path = "../support/mod.rs"]
mod support;

mod client;
mod files;
mod fleet;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use client::Client;
use common::protocol::{MAX_RECEIVES, REQUEST_QUEUE};
use files::{bombs, corrupt_files, good_files};
use fleet::{Fleet, Postgres, S3Server, Service, WORKERS};
use support::Job;

const GOOD_IMAGES: usize = 100;
/// The phase's whole batch must finish within this.
const PHASE_LIMIT: Duration = Duration::from_secs(180);
const OUTAGE: Duration = Duration::from_secs(10);
/// Kills the kill phase makes, at least.
const KILLS: usize = 15;

fn recipes() -> Value {
    json!([
        {"name": "thumb", "ops": [{"op": "thumbnail", "width": 256, "height": 256}]},
        {"name": "poster", "ops": [
            {"op": "resize", "width": 1200, "height": 900, "fit": "cover"},
            {"op": "blur", "sigma": 2.0},
            {"op": "format", "format": "png"}
        ]},
        {"name": "mono", "ops": [
            {"op": "recolor", "mode": "sepia"},
            {"op": "contrast", "amount": 0.3},
            {"op": "sharpen", "amount": 1.0},
            {"op": "format", "format": "webp", "quality": 80}
        ]}
    ])
}
const RECIPES: usize = 3;

/// What one phase measured.
struct Figures {
    phase: &'static str,
    pairs: usize,
    done: usize,
    failed: usize,
    seconds: f64,
    /// Pairs that never reached a final state with their result.
    lost: usize,
    /// Outputs recorded twice, or result objects beyond one per done
    /// output: what a user would see twice.
    duplicated: i64,
    /// Outputs whose final state was reported more than once (a worker
    /// whose report's fate an outage hid, or whose lock ran out, reports
    /// again): delivery is at least once, and applying a report twice
    /// changes nothing, which `duplicated` checks.
    reported_twice: i64,
    /// Outputs whose work was started more than once: redelivered after a
    /// kill or an expired lock, or retried in place through an outage.
    reprocessed: i64,
    kills: usize,
}

/// Checks the finished job of `expected` images against everything the
/// product promises, and returns (done, failed).
async fn verify(
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

async fn result_objects(s3: &common::storage::Storage, job: &Job) -> usize {
    let prefix = format!("jobs/{}/outputs/", job.id);
    s3.list(&prefix).await.unwrap().len()
}

/// Waits for the phase's job of `images` to finish, checks it (see
/// `verify`) and measures it; `kills` is left for the caller.
async fn finish_phase(
    phase: &'static str,
    started: Instant,
    client: &Client,
    pool: &PgPool,
    s3: &common::storage::Storage,
    job: &Job,
    images: usize,
) -> Figures {
    let (done, failed) = verify(client, pool, s3, job, images).await;
    let pairs = images * RECIPES;
    let stray_objects = result_objects(s3, job).await.saturating_sub(done) as i64;
    Figures {
        phase,
        pairs,
        done,
        failed,
        lost: pairs - done - failed,
        duplicated: outputs_recorded_twice(pool, job).await + stray_objects,
        reported_twice: reported_final_twice(pool, job).await,
        seconds: started.elapsed().as_secs_f64(),
        reprocessed: responses_per_output_over_one(pool, job, "processing").await,
        kills: 0,
    }
}

/// Uploads the good images, takes `service` down for `OUTAGE` once a fifth
/// of the batch is final, brings it back and finishes the phase.
async fn outage_phase(
    phase: &'static str,
    service: &mut impl Service,
    client: &Client,
    pool: &PgPool,
    s3: &common::storage::Storage,
    good: &[(String, Vec<u8>)],
) -> Figures {
    let started = Instant::now();
    let job = client.create_job().await;
    client.upload(&job, good).await;
    client
        .wait_final(&job, (GOOD_IMAGES * RECIPES) as u64 / 5)
        .await;
    service.down();
    tokio::time::sleep(OUTAGE).await;
    service.up();
    finish_phase(phase, started, client, pool, s3, &job, GOOD_IMAGES).await
}

/// Outputs of this job with more than one response in `state`, counted from
/// the responses the queue keeps for rewinding: `processing` twice is work
/// started again (a worker killed or cut off before its delete, or a retry
/// through an outage); a final state twice is a result reported twice.
async fn responses_per_output_over_one(pool: &PgPool, job: &Job, state: &str) -> i64 {
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
async fn outputs_recorded_twice(pool: &PgPool, job: &Job) -> i64 {
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
async fn reported_final_twice(pool: &PgPool, job: &Job) -> i64 {
    responses_per_output_over_one(pool, job, "done").await
        + responses_per_output_over_one(pool, job, "failed").await
}

/// Kills a random worker every 1–3 s, uploading batch after batch into one
/// job so that each kill lands on work in hand, until `KILLS` kills; then
/// lets the job finish.
///
/// A request whose worker dies `MAX_RECEIVES` times running is
/// dead-lettered by design: a poison message must not crash the fleet
/// forever. Here the deaths are the scenario, not the message's doing, and
/// each kill costs every message in the killed worker's hands (its slots
/// and its prefetched one) a receive, so a slow request could meet that
/// rule by luck alone. The phase gives the request queue a receive limit
/// above any request's share of the kills, and puts the product's back
/// after.
async fn kill_phase(
    fleet: &mut Fleet,
    client: &Client,
    pool: &PgPool,
    s3: &common::storage::Storage,
    good: &[(String, Vec<u8>)],
    rng: &mut impl Rng,
) -> Figures {
    // Each kill costs a request at most one receive, and it gets one more to
    // finish: past that, something other than the kills is wrong.
    set_max_receives(pool, KILLS as u32 + 2).await;
    let started = Instant::now();
    let job = client.create_job().await;
    let kills_before = fleet.kills;
    let mut batches = 0;
    while fleet.kills - kills_before < KILLS {
        let pairs = (batches * GOOD_IMAGES * RECIPES) as u64;
        if client.done_count(&job).await >= pairs {
            client.upload(&job, good).await;
            batches += 1;
        }
        assert!(started.elapsed() < PHASE_LIMIT, "kill phase did not finish");
        tokio::time::sleep(Duration::from_millis(rng.random_range(1000..3000))).await;
        fleet.kill_and_restart(rng.random_range(0..WORKERS));
    }
    let kills = fleet.kills - kills_before;
    let phase = format!("kill -9 a random worker every 1-3 s ({kills} kills)");
    let figures = finish_phase(
        Box::leak(phase.into_boxed_str()),
        started,
        client,
        pool,
        s3,
        &job,
        batches * GOOD_IMAGES,
    )
    .await;
    set_max_receives(pool, MAX_RECEIVES).await;
    Figures { kills, ..figures }
}

/// Sets the request queue's receive limit, past which a request is
/// dead-lettered.
async fn set_max_receives(pool: &PgPool, limit: u32) {
    let queues = queue::Queues::new(pool.clone());
    let requests = queues.open(REQUEST_QUEUE).await.unwrap();
    let attributes = queue::QueueAttributes {
        max_receive_count: Some(limit),
        ..requests.attributes().clone()
    };
    queues.put(REQUEST_QUEUE, &attributes).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_loses_nothing_through_kills_outages_and_bad_files() {
    let work = std::env::temp_dir().join(format!("darkroom-chaos-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&work).unwrap();
    let mut pg = Postgres::init(&work);
    let database_url = pg.create_database("darkroom").await;
    let mut s3_server = S3Server::start(&work);
    let mut fleet = Fleet::start(&work, &database_url, &s3_server.endpoint());
    let pool = PgPoolOptions::new().max_connections(2);
    let pool = pool.connect(&database_url).await.unwrap();
    let s3 = s3_server.storage().await;
    let client = Client {
        http: reqwest::Client::new(),
        base: fleet.web_url.clone(),
    };
    let good = good_files();
    let mut figures = Vec::new();
    let mut rng = rand::rng();

    // 1. No worker running: uploads succeed and wait in the queue; corrupt
    //    files are accepted and fail later, bombs are refused at once.
    let started = Instant::now();
    let job = client.create_job().await;
    let corrupt = corrupt_files();
    let mut files: Vec<_> = good.iter().cloned().chain(corrupt.clone()).collect();
    files.extend(bombs());
    files.shuffle(&mut rng);
    let (accepted, rejected) = client.upload(&job, &files).await;
    assert_eq!(accepted, GOOD_IMAGES + corrupt.len());
    assert_eq!(rejected.len(), 5, "bombs refused: {rejected:?}");
    for r in &rejected {
        assert!(r["name"].as_str().unwrap().starts_with("bomb-"), "{r}");
        assert!(
            r["error"].as_str().unwrap().contains("100000"),
            "bomb error names its size: {r}"
        );
    }
    let status = client.status(&job).await.unwrap();
    assert_eq!(status["counts"]["done"], 0);
    let queued = support::scalar(
        &pool,
        "select coalesce(sum(cardinality(m.ids)), 0)::int8
         from queue_messages m join queue_queues q on q.id = m.queue_id
         where q.name = 'darkroom.requests' and m.lease is null",
    )
    .await;
    assert_eq!(queued as usize, (GOOD_IMAGES + corrupt.len()) * RECIPES);
    fleet.start_workers();
    let phase = finish_phase(
        "no workers at upload; 15 corrupt + 5 bombs mixed in",
        started,
        &client,
        &pool,
        &s3,
        &job,
        GOOD_IMAGES + corrupt.len(),
    )
    .await;
    assert_eq!(phase.failed, corrupt.len() * RECIPES);
    figures.push(phase);

    // 2. SIGKILL a random worker every 1–3 s and restart it, at least
    //    KILLS times: batches are uploaded until that many kills have
    //    landed on work in hand.
    figures.push(kill_phase(&mut fleet, &client, &pool, &s3, &good, &mut rng).await);

    // 3. Postgres down for 10 s mid-run.
    figures.push(
        outage_phase(
            "Postgres stopped for 10 s mid-run",
            &mut pg,
            &client,
            &pool,
            &s3,
            &good,
        )
        .await,
    );

    // 4. S3 server down for 10 s mid-run.
    figures.push(
        outage_phase(
            "S3 server stopped for 10 s mid-run",
            &mut s3_server,
            &client,
            &pool,
            &s3,
            &good,
        )
        .await,
    );

    for f in &figures {
        assert_eq!((f.lost, f.duplicated), (0, 0), "{}", f.phase);
    }
    let mut table = String::from(
        "\nchaos suite: 3 worker processes x 2 slots, 3 recipes per image, lock 3 s\n\
         | phase | pairs | done | failed | lost | duplicated | reported twice | re-run | kills | seconds |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in &figures {
        writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            f.phase,
            f.pairs,
            f.done,
            f.failed,
            f.lost,
            f.duplicated,
            f.reported_twice,
            f.reprocessed,
            f.kills,
            f.seconds
        )
        .unwrap();
    }
    println!("{table}");
    // The test harness captures stdout; scripts/test prints this file.
    let figures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/chaos.md");
    std::fs::write(&figures, &table).unwrap();
    drop(fleet);
    drop(s3_server);
    drop(pg);
    let _ = std::fs::remove_dir_all(&work);
}
