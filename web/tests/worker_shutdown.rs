//! The worker runtime's dead letters and shutdown, run in process against
//! the web server, real Postgres and a real S3 server: a request that never
//! finishes is dead-lettered and its output failed, and a worker stopping
//! gives back what it cannot finish within its grace.

mod support;

use std::time::Duration;

use common::protocol::{MAX_RECEIVES, declare_queues};
use queue::{Queues, Router};
use sqlx::PgPool;
use support::{
    Workers, assert_error, first_output, poll, request_stats, settings, slow_recipe, spawn_app,
    thumbnail,
};

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn request_that_never_finishes_is_dead_lettered_and_its_output_fails(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(thumbnail("t", 64)).await;
    app.upload_one(&job, "rocket.jpg").await;
    // Workers that crash on it every time: received, never deleted; the
    // lease is given back at once instead of waiting for it to run out.
    let (requests, _) = declare_queues(&Router::new(Queues::new(pool.clone())))
        .await
        .unwrap();
    for _ in 0..MAX_RECEIVES {
        let got = requests.receive(1, Duration::from_secs(60)).await.unwrap();
        assert_eq!(got.len(), 1);
        requests
            .change_visibility(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    // The next receive finds it over the limit and dead-letters it.
    let got = requests.receive(1, Duration::from_secs(60)).await.unwrap();
    assert!(got.is_empty());

    let status = app.wait_done(&job, Duration::from_secs(30)).await;
    assert_eq!(status["counts"]["failed"], 1, "{status}");
    let words = ["gave up after 5 attempts", "darkroom.requests.dead"];
    assert_error(first_output(&status), &words);
    // Kept for inspection and redrive, not deleted.
    let stats = request_stats(&pool).await;
    assert_eq!(stats.dead_lettered, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn shutdown_releases_what_it_cannot_finish_within_the_grace(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let mut settings = settings(1);
    settings.lock = Duration::from_secs(600);
    settings.shutdown_grace = Duration::from_millis(100);
    let workers = Workers::start(&pool, &app, settings, 1).await;
    let job = app.create_job(slow_recipe()).await;
    app.upload_one(&job, "rocket.jpg").await;
    poll(Duration::from_secs(30), async || {
        match request_stats(&pool).await.in_flight {
            0 => Err("the worker never leased it".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), workers.stop())
        .await
        .expect("worker stops within its grace");
    // Released, not left locked for the 600 s lease: another worker can
    // take it right away.
    let stats = request_stats(&pool).await;
    assert_eq!((stats.visible, stats.in_flight), (1, 0), "{stats:?}");
}
