//! The worker runtime's lease handling, run in process against the web
//! server, real Postgres and a real S3 server: heartbeats, dead letters and
//! shutdown.

mod support;

use std::time::{Duration, Instant};

use common::protocol::{MAX_RECEIVES, declare_queues};
use queue::Queues;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{TestApp, photo, spawn_app};
use tokio_util::sync::CancellationToken;
use worker::runtime::{Worker, WorkerSettings};

/// A recipe that takes seconds: enlarge a photo to 24 MP, then blur it.
fn slow_recipe() -> Value {
    json!([{"name": "slow", "ops": [
        {"op": "resize", "width": 6000, "height": 4000, "fit": "fill"},
        {"op": "blur", "sigma": 12.0}
    ]}])
}

async fn in_process_worker(pool: &PgPool, app: &TestApp, mut settings: WorkerSettings) -> Worker {
    // The engine runs in a child process of the worker binary, not of this test.
    settings.isolation.program = support::workspace_bin("darkroom-worker");
    let (requests, responses) = declare_queues(&Queues::new(pool.clone())).await.unwrap();
    Worker::new(requests, responses, app.storage.clone(), settings)
}

/// How many responses in `state` workers sent for this job (a worker sends
/// `processing` when it starts on a request), from the messages the queue
/// keeps for rewinding after they are consumed.
async fn responses_sent(pool: &PgPool, job_id: &str, state: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from queue_chunks c join queue_queues q on q.id = c.queue_id
         cross join unnest(c.bodies) as b(body)
         where q.name = 'darkroom.responses' and b.body::jsonb ->> 'job_id' = $1
           and b.body::jsonb ->> 'state' = $2",
    )
    .bind(job_id)
    .bind(state)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn request_stats(pool: &PgPool) -> queue::Stats {
    Queues::new(pool.clone())
        .open(common::protocol::REQUEST_QUEUE)
        .await
        .unwrap()
        .stats()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn heartbeat_keeps_a_long_op_leased_so_no_second_worker_repeats_it(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let settings = WorkerSettings {
        concurrency: 1,
        lock: Duration::from_secs(1),
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let worker = in_process_worker(&pool, &app, settings.clone()).await;
        workers.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    let job = app.create_job(slow_recipe()).await;
    let started = Instant::now();
    assert_eq!(
        app.upload(&job, &[("rocket.jpg", photo("rocket.jpg"))])
            .await
            .status(),
        201
    );
    let status = app.wait_done(&job, Duration::from_secs(120)).await;
    let took = started.elapsed();
    shutdown.cancel();
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(status["counts"]["done"], 1, "{status}");
    // Without the heartbeat the 1 s lock would run out during the op and
    // the idle worker would take the message and process it again.
    assert!(
        took > Duration::from_secs(2),
        "the op was too quick ({took:?}) to outlast the lock; make it slower"
    );
    assert_eq!(responses_sent(&pool, &job.id, "processing").await, 1);
    assert_eq!(responses_sent(&pool, &job.id, "done").await, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn request_that_never_finishes_is_dead_lettered_and_its_output_fails(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app
        .create_job(json!([{"name": "t", "ops": [{"op": "thumbnail", "width": 64, "height": 64}]}]))
        .await;
    app.upload(&job, &[("rocket.jpg", photo("rocket.jpg"))])
        .await;
    // Workers that crash on it every time: received, never deleted; the
    // lease is given back at once instead of waiting for it to run out.
    let (requests, _) = declare_queues(&Queues::new(pool.clone())).await.unwrap();
    for _ in 0..MAX_RECEIVES {
        let got = requests.receive(1, Duration::from_secs(60)).await.unwrap();
        assert_eq!(got.len(), 1);
        requests
            .change_visibility(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    // The next receive finds it over the limit and dead-letters it.
    assert!(
        requests
            .receive(1, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );

    let status = app.wait_done(&job, Duration::from_secs(30)).await;
    assert_eq!(status["counts"]["failed"], 1, "{status}");
    let error = status["images"][0]["outputs"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("gave up after 5 attempts") && error.contains("darkroom.requests.dead"),
        "{error}"
    );
    // Kept for inspection and redrive, not deleted.
    let stats = request_stats(&pool).await;
    assert_eq!(stats.dead_lettered, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn shutdown_releases_what_it_cannot_finish_within_the_grace(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let settings = WorkerSettings {
        concurrency: 1,
        lock: Duration::from_secs(600),
        shutdown_grace: Duration::from_millis(100),
        ..Default::default()
    };
    let worker = in_process_worker(&pool, &app, settings).await;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let job = app.create_job(slow_recipe()).await;
    app.upload(&job, &[("rocket.jpg", photo("rocket.jpg"))])
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while request_stats(&pool).await.in_flight == 0 {
        assert!(Instant::now() < deadline, "the worker never leased it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("worker stops within its grace")
        .unwrap();
    // Released, not left locked for the 600 s lease: another worker can
    // take it right away.
    let stats = request_stats(&pool).await;
    assert_eq!((stats.visible, stats.in_flight), (1, 0), "{stats:?}");
}

/// Runs one in-process worker with `settings` until the job is done.
async fn run_job(pool: &PgPool, app: &TestApp, settings: WorkerSettings, recipes: Value) -> Value {
    let worker = in_process_worker(pool, app, settings).await;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let job = app.create_job(recipes).await;
    assert_eq!(
        app.upload(&job, &[("rocket.jpg", photo("rocket.jpg"))])
            .await
            .status(),
        201
    );
    let status = app.wait_done(&job, Duration::from_secs(120)).await;
    shutdown.cancel();
    running.await.unwrap();
    status
}

fn output<'a>(status: &'a Value, recipe: &str) -> &'a Value {
    status["images"][0]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["recipe"] == recipe)
        .unwrap()
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn image_past_the_deadline_is_stopped_and_failed_while_the_others_finish(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let mut settings = WorkerSettings {
        concurrency: 2,
        lock: Duration::from_secs(2),
        ..Default::default()
    };
    settings.isolation.deadline = Duration::from_secs(1);
    let started = Instant::now();
    let status = run_job(
        &pool,
        &app,
        settings,
        json!([
            slow_recipe()[0],
            {"name": "quick", "ops": [{"op": "thumbnail", "width": 64, "height": 64}]}
        ]),
    )
    .await;
    assert_eq!(output(&status, "quick")["state"], "done", "{status}");
    let slow = output(&status, "slow");
    assert_eq!(slow["state"], "failed", "{status}");
    let error = slow["error"].as_str().unwrap();
    assert!(
        error.contains("1-second deadline") && error.contains("DARKROOM_WORKER_DEADLINE"),
        "{error}"
    );
    // Failed once and for all: not redelivered until dead-lettered.
    let stats = request_stats(&pool).await;
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_lettered),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(
        responses_sent(&pool, &job_id(&status), "processing").await,
        2
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn image_needing_more_memory_than_the_worker_has_fails_and_the_rest_are_done(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let settings = WorkerSettings {
        concurrency: 2,
        max_memory: 96 << 20,
        ..Default::default()
    };
    let status = run_job(
        &pool,
        &app,
        settings,
        json!([
            {"name": "big", "ops": [{"op": "resize", "width": 6000, "height": 5000, "fit": "fill"}]},
            {"name": "small", "ops": [{"op": "thumbnail", "width": 64, "height": 64}]}
        ]),
    )
    .await;
    assert_eq!(output(&status, "small")["state"], "done", "{status}");
    let big = output(&status, "big");
    assert_eq!(big["state"], "failed", "{status}");
    let error = big["error"].as_str().unwrap();
    assert!(
        error.contains("more than this worker's 96 MiB")
            && error.contains("DARKROOM_WORKER_MAX_MEMORY"),
        "{error}"
    );
}

fn job_id(status: &Value) -> String {
    status["id"].as_str().unwrap().to_owned()
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn request_naming_another_jobs_original_is_refused(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let recipe = json!([{"name": "t", "ops": [{"op": "thumbnail", "width": 64, "height": 64}]}]);
    let victim = app.create_job(recipe.clone()).await;
    let uploaded: Value = app
        .upload(&victim, &[("rocket.jpg", photo("rocket.jpg"))])
        .await
        .json()
        .await
        .unwrap();
    let victim_key = common::protocol::source_key(
        victim.id.parse().unwrap(),
        uploaded["images"][0]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    // A request for another job's image that names the victim's original.
    let attacker = app.create_job(recipe).await;
    let image_id = uuid::Uuid::new_v4();
    sqlx::query(
        "insert into images (id, job_id, name, bytes, content_type, storage_key)
         values ($1, $2, 'x.jpg', 1, 'image/jpeg', 'x')",
    )
    .bind(image_id)
    .bind(attacker.id.parse::<uuid::Uuid>().unwrap())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("insert into outputs (image_id, recipe, job_id) values ($1, 't', $2)")
        .bind(image_id)
        .bind(attacker.id.parse::<uuid::Uuid>().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    let request = common::protocol::Request {
        job_id: attacker.id.parse().unwrap(),
        image_id,
        image_name: "x.jpg".into(),
        recipe: serde_json::from_value(
            json!({"name": "t", "ops": [{"op": "thumbnail", "width": 64, "height": 64}]}),
        )
        .unwrap(),
        source_key: victim_key,
    };
    let (requests, _) = declare_queues(&Queues::new(pool.clone())).await.unwrap();
    requests
        .send(serde_json::to_string(&request).unwrap())
        .await
        .unwrap();

    let settings = WorkerSettings {
        concurrency: 1,
        ..Default::default()
    };
    let worker = in_process_worker(&pool, &app, settings).await;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let status = app.wait_done(&attacker, Duration::from_secs(60)).await;
    app.wait_done(&victim, Duration::from_secs(60)).await;
    shutdown.cancel();
    running.await.unwrap();
    let out = &status["images"][0]["outputs"][0];
    assert_eq!(out["state"], "failed", "{status}");
    assert!(
        out["error"].as_str().unwrap().contains("not its image's"),
        "{status}"
    );
}
