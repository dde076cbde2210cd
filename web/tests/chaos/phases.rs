//! The phases of the suite and what each measured: a phase's end, an
//! outage of Postgres or the S3 server, and workers killed with SIGKILL.

use std::time::{Duration, Instant};

use common::protocol::{MAX_RECEIVES, REQUEST_QUEUE};
use rand::Rng;
use sqlx::PgPool;

use crate::checks::{
    outputs_recorded_twice, reported_final_twice, responses_per_output_over_one, result_objects,
    verify,
};
use crate::client::Client;
use crate::fleet::{Fleet, Service, WORKERS};
use crate::support::Job;
use crate::{GOOD_IMAGES, KILLS, OUTAGE, PHASE_LIMIT, RECIPES};

/// What one phase measured.
pub struct Figures {
    pub phase: &'static str,
    pub pairs: usize,
    pub done: usize,
    pub failed: usize,
    pub seconds: f64,
    /// Pairs that never reached a final state with their result.
    pub lost: usize,
    /// Outputs recorded twice, or result objects beyond one per done
    /// output: what a user would see twice.
    pub duplicated: i64,
    /// Outputs whose final state was reported more than once (a worker
    /// whose report's fate an outage hid, or whose lock ran out, reports
    /// again): delivery is at least once, and applying a report twice
    /// changes nothing, which `duplicated` checks.
    pub reported_twice: i64,
    /// Outputs whose work was started more than once: redelivered after a
    /// kill or an expired lock, or retried in place through an outage.
    pub reprocessed: i64,
    pub kills: usize,
}

/// Waits for the phase's job of `images` to finish, checks it (see
/// `verify`) and measures it; `kills` is left for the caller.
pub async fn finish_phase(
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
pub async fn outage_phase(
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
pub async fn kill_phase(
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
