//! The worker runtime, run in process against the web server, real
//! Postgres and a real S3 server: heartbeats that keep a long op leased,
//! processing notices, prefetch, the per-image deadline and memory limit,
//! a request naming another job's original, queues on other clusters, and
//! a worker on its own database role. Dead letters and shutdown are in
//! `worker_shutdown.rs`.

mod support;

use std::time::{Duration, Instant};

use common::protocol::{declare_queues, open_queues};
use queue::{Queues, Router};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{
    Workers, assert_error, ensure_role, first_output, job_id, poll, request_stats, responses_sent,
    run_job, settings, slow_recipe, spawn_app, thumbnail,
};
use testkit::cluster;
use worker::runtime::WorkerSettings;

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn heartbeat_keeps_a_long_op_leased_so_no_second_worker_repeats_it(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let mut settings = settings(1);
    settings.lock = Duration::from_secs(1);
    let (status, took) = run_job(&pool, &app, (settings, 2), slow_recipe()).await;
    assert_eq!(status["counts"]["done"], 1, "{status}");
    // Without the heartbeat the 1 s lock would run out during the op and
    // the idle worker would take the message and process it again.
    assert!(
        took > Duration::from_secs(2),
        "the op was too quick ({took:?}) to outlast the lock; make it slower"
    );
    let job_id = job_id(&status);
    assert_eq!(responses_sent(&pool, &job_id, "processing").await, 1);
    assert_eq!(responses_sent(&pool, &job_id, "done").await, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn quick_image_reports_only_its_outcome_without_a_processing_notice(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (status, _) = run_job(&pool, &app, (settings(1), 1), thumbnail("t", 64)).await;
    assert_eq!(status["counts"]["done"], 1, "{status}");
    let job_id = job_id(&status);
    // Done well within the default second: a response and a Postgres
    // transaction at each end saved. (The slow op above gets its notice.)
    assert_eq!(responses_sent(&pool, &job_id, "processing").await, 0);
    assert_eq!(responses_sent(&pool, &job_id, "done").await, 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn prefetch_leases_the_next_image_while_the_one_slot_is_busy(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let settings = WorkerSettings {
        prefetch: 1,
        ..settings(1)
    };
    let workers = Workers::start(&pool, &app, settings, 1).await;
    let job = app.create_job(slow_recipe()).await;
    for _ in 0..3 {
        app.upload_accepted(&job, "rocket.jpg").await;
    }
    // One image in the engine, the next leased (and its original fetched)
    // meanwhile, the third left visible for other workers.
    poll(Duration::from_secs(60), async || {
        let stats = request_stats(&pool).await;
        match (stats.in_flight, stats.visible) {
            (2, 1) => Ok(()),
            _ => Err(format!("{stats:?}")),
        }
    })
    .await;
    let status = app.wait_done(&job, Duration::from_secs(120)).await;
    workers.stop().await;
    assert_eq!(status["counts"]["done"], 3, "{status}");
}

/// Asserts that the output of `done` is done and that of `failed` failed
/// with an error naming `words`.
fn assert_one_failed(status: &Value, done: &str, failed: &str, words: &[&str]) {
    let outputs = status["images"][0]["outputs"].as_array().unwrap();
    let output = |recipe| outputs.iter().find(|o| o["recipe"] == recipe).unwrap();
    assert_eq!(output(done)["state"], "done", "{status}");
    assert_eq!(output(failed)["state"], "failed", "{status}");
    assert_error(output(failed), words);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn image_past_the_deadline_is_stopped_and_failed_while_the_others_finish(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let mut settings = settings(2);
    settings.lock = Duration::from_secs(2);
    settings.isolation.deadline = Duration::from_secs(1);
    // Every start shows, so a second try of either request would too.
    settings.processing_notice = Duration::ZERO;
    let started = Instant::now();
    let recipes = json!([slow_recipe()[0], thumbnail("quick", 64)[0]]);
    let (status, _) = run_job(&pool, &app, (settings, 1), recipes).await;
    let words = ["1-second deadline", "DARKROOM_WORKER_DEADLINE"];
    assert_one_failed(&status, "quick", "slow", &words);
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
    let mut settings = settings(2);
    settings.max_memory = 96 << 20;
    let big = json!({"name": "big", "ops": [{"op": "resize", "width": 6000, "height": 5000, "fit": "fill"}]});
    let recipes = json!([big, thumbnail("small", 64)[0]]);
    let (status, _) = run_job(&pool, &app, (settings, 1), recipes).await;
    let words = [
        "more than this worker's 96 MiB",
        "DARKROOM_WORKER_MAX_MEMORY",
    ];
    assert_one_failed(&status, "small", "big", &words);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn request_naming_another_jobs_original_is_refused(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let recipe = thumbnail("t", 64);
    let victim = app.create_job(recipe.clone()).await;
    let victim_image = app.upload_accepted(&victim, "rocket.jpg").await;
    let victim_key =
        common::protocol::source_key(victim.id.parse().unwrap(), victim_image.parse().unwrap());
    // A request for another job's image that names the victim's original.
    let attacker = app.create_job(recipe.clone()).await;
    let attacker_id = attacker.id.parse::<uuid::Uuid>().unwrap();
    let image_id = uuid::Uuid::new_v4();
    for statement in [
        "insert into images (id, job_id, name, bytes, content_type, storage_key)
         values ($1, $2, 'x.jpg', 1, 'image/jpeg', 'x')",
        "insert into outputs (image_id, recipe, job_id) values ($1, 't', $2)",
    ] {
        let insert = sqlx::query(statement).bind(image_id).bind(attacker_id);
        insert.execute(&pool).await.unwrap();
    }
    let request = common::protocol::Request {
        job_id: attacker_id,
        image_id,
        image_name: "x.jpg".into(),
        recipe: serde_json::from_value(recipe[0].clone()).unwrap(),
        source_key: victim_key,
    };
    let (requests, _) = declare_queues(&Router::new(Queues::new(pool.clone())))
        .await
        .unwrap();
    requests
        .send(serde_json::to_string(&request).unwrap())
        .await
        .unwrap();

    let workers = Workers::start(&pool, &app, settings(1), 1).await;
    let status = app.wait_done(&attacker, Duration::from_secs(60)).await;
    app.wait_done(&victim, Duration::from_secs(60)).await;
    workers.stop().await;
    let out = first_output(&status);
    assert_eq!(out["state"], "failed", "{status}");
    assert!(
        out["error"].as_str().unwrap().contains("not its image's"),
        "{status}"
    );
}

/// Messages ever sent to `queue` in the database of `pool`, from the
/// bodies kept for rewinding.
async fn sent_to(pool: &PgPool, queue: &str) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(cardinality(c.bodies)), 0)::int8 from queue_chunks c
         join queue_queues q on q.id = c.queue_id where q.name = $1",
    )
    .bind(queue)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A job processed while the queues named in `placed` live on another
/// cluster: the web server and the worker follow the routing table of their
/// database, the control database. Returns the control pool's and the
/// shard's counts of requests and responses sent.
async fn job_with_queues_on_a_shard(pool: PgPool, placed: &[&str]) -> [(i64, i64); 2] {
    let shard = cluster::Cluster::start();
    let router = Router::new(Queues::new(pool.clone()));
    router.add_shard("s1", &shard.url()).await.unwrap();
    declare_queues(&router).await.unwrap();
    for queue in placed {
        router.place(queue, &["s1"]).await.unwrap();
    }
    let app = spawn_app(pool.clone()).await;
    let (status, _) = run_job(&pool, &app, (settings(1), 1), thumbnail("t", 64)).await;
    assert_eq!(status["counts"]["done"], 1, "{status}");
    let shard_pool = PgPool::connect(&shard.url()).await.unwrap();
    let mut counts = [(0, 0); 2];
    for (i, p) in [&pool, &shard_pool].into_iter().enumerate() {
        counts[i] = (
            sent_to(p, "darkroom.requests").await,
            sent_to(p, "darkroom.responses").await,
        );
    }
    counts
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn job_runs_with_its_queues_on_another_cluster(pool: PgPool) {
    let placed = ["darkroom.requests", "darkroom.responses"];
    let [control, shard] = job_with_queues_on_a_shard(pool, &placed).await;
    assert_eq!(control, (0, 0), "nothing went through the control database");
    assert_eq!(shard, (1, 1));
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn job_runs_with_requests_and_responses_on_different_clusters(pool: PgPool) {
    let [control, shard] = job_with_queues_on_a_shard(pool, &["darkroom.requests"]).await;
    assert_eq!(control, (0, 1), "the response came to the control database");
    assert_eq!(shard, (1, 0), "the request went through the shard");
}

/// A role for a worker of its own, as a deployment makes one (shared by
/// every test database of the cluster; granted in each).
const WORKER_ROLE: &str = "darkroom_worker_test";
const SET_WORKER_ROLE: &str = "set role darkroom_worker_test";

/// A pool on `pool`'s database whose connections act as `WORKER_ROLE`,
/// given what `darkroom-web` grants it (DARKROOM_WORKER_DB_ROLE).
async fn worker_role_pool(pool: &PgPool) -> PgPool {
    ensure_role(pool, WORKER_ROLE).await;
    common::db::grant_worker(pool, WORKER_ROLE).await.unwrap();
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(SET_WORKER_ROLE).await.map(drop)
            })
        })
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn worker_on_its_own_role_does_its_work_and_reads_no_users_data(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let restricted = worker_role_pool(&pool).await;
    let router = Router::new(Queues::new(restricted.clone()));
    let queues = open_queues(&router, Duration::from_secs(10)).await.unwrap();
    let workers = Workers::start_on(vec![queues], &app, settings(1));
    let job = app.create_job(thumbnail("t", 64)).await;
    app.upload_accepted(&job, "rocket.jpg").await;
    let status = app.wait_done(&job, Duration::from_secs(60)).await;
    workers.stop().await;
    assert_eq!(status["counts"]["done"], 1, "{status}");
    // What a send does when its ids cross into a partition not made yet.
    sqlx::raw_sql("select queue_ensure_partitions(10000000000, 4)")
        .execute(&restricted)
        .await
        .expect("a worker's send makes the partitions it needs");

    for statement in [
        "select count(*) from jobs",
        "select count(*) from outputs",
        "update queue_queues set retention_ms = 60000",
        "select count(*) from queue_sqs_queues",
        "insert into queue_shards (id, name, url) values (9, 'evil', 'postgres://evil')",
        "create table stolen (x int)",
    ] {
        let refused = sqlx::raw_sql(statement)
            .execute(&restricted)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("permission denied"),
            "{statement}: {refused}"
        );
    }
}
