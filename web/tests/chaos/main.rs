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

mod checks;
mod client;
mod files;
mod fleet;
mod phases;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

use client::Client;
use files::{bombs, corrupt_files, good_files};
use fleet::{Fleet, Postgres, S3Server};
use phases::{finish_phase, kill_phase, outage_phase};

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
