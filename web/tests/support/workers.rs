//! Worker runtimes in the test's process, against a test app: their
//! settings, a recipe slow enough to outlast a lock, and the responses they
//! sent.

use std::time::{Duration, Instant};

use common::protocol::declare_queues;
use queue::{Queues, Routed, Router};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use worker::runtime::{Worker, WorkerSettings};

use super::TestApp;

/// A recipe that takes seconds: enlarge a photo to 24 MP, then blur it.
pub fn slow_recipe() -> Value {
    json!([{"name": "slow", "ops": [
        {"op": "resize", "width": 6000, "height": 4000, "fit": "fill"},
        {"op": "blur", "sigma": 12.0}
    ]}])
}

/// The default settings, with `concurrency` slots.
pub fn settings(concurrency: usize) -> WorkerSettings {
    WorkerSettings {
        concurrency,
        ..Default::default()
    }
}

/// Workers run in this process on `settings`, until `stop`.
pub struct Workers {
    shutdown: CancellationToken,
    running: Vec<JoinHandle<()>>,
}

impl Workers {
    pub async fn start(pool: &PgPool, app: &TestApp, settings: WorkerSettings, n: usize) -> Self {
        let mut queues = Vec::new();
        for _ in 0..n {
            queues.push(
                declare_queues(&Router::new(Queues::new(pool.clone())))
                    .await
                    .unwrap(),
            );
        }
        Self::start_on(queues, app, settings)
    }

    /// A worker on each pair of request and response queues.
    pub fn start_on(
        queues: Vec<(Routed, Routed)>,
        app: &TestApp,
        mut settings: WorkerSettings,
    ) -> Self {
        // The engine runs in a child process of the worker binary, not of this test.
        settings.isolation.program = super::workspace_bin("darkroom-worker");
        let shutdown = CancellationToken::new();
        let running = queues
            .into_iter()
            .map(|(requests, responses)| {
                let worker =
                    Worker::new(requests, responses, app.storage.clone(), settings.clone());
                tokio::spawn(worker.run(shutdown.clone()))
            })
            .collect();
        Workers { shutdown, running }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for w in self.running {
            w.await.unwrap();
        }
    }
}

/// How many responses in `state` workers sent for this job (a worker sends
/// `processing` once a request has taken `processing_notice`), from the messages the queue
/// keeps for rewinding after they are consumed.
pub async fn responses_sent(pool: &PgPool, job_id: &str, state: &str) -> i64 {
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

/// Runs `n` in-process workers with `settings` until a job of `recipes` on
/// rocket.jpg is done; returns its status and how long it took from the
/// upload.
pub async fn run_job(
    pool: &PgPool,
    app: &TestApp,
    (settings, n): (WorkerSettings, usize),
    recipes: Value,
) -> (Value, Duration) {
    let workers = Workers::start(pool, app, settings, n).await;
    let job = app.create_job(recipes).await;
    let started = Instant::now();
    app.upload_accepted(&job, "rocket.jpg").await;
    let status = app.wait_done(&job, Duration::from_secs(120)).await;
    let took = started.elapsed();
    workers.stop().await;
    (status, took)
}

/// The id of the job whose status is `status`.
pub fn job_id(status: &Value) -> String {
    status["id"].as_str().unwrap().to_owned()
}
