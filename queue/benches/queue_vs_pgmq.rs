//! This queue against pgmq, side by side in one run on the same Postgres.
//!
//! pgmq is installed from the `pgmq` crate's embedded SQL (pgmq.sql) into the
//! same bench database. Same messages (1 KiB, random), batch sizes (1, 100) and
//! client counts (1, 4, 16). For each: send, receive+delete from a backlog,
//! and the full cycle (producers and consumers at once), in messages/s, with
//! receive latency p50/p99; then long-poll wake-up latency.
//!
//! Run with `scripts/bench-queue` (provisions Postgres) or
//! `DATABASE_URL=... cargo bench -p queue --bench queue_vs_pgmq`. Each figure
//! is the median of `BENCH_ROUNDS` (default 3) runs. To narrow a run:
//! `BENCH_BATCHES=100 BENCH_CLIENTS=4 BENCH_ROUNDS=1 BENCH_ONLY=darkroom BENCH_SKIP_WAKEUP=1`
//! (and `BENCH_MESSAGES` for the messages per phase: 6,000 at batch 1, 150,000 at 100).
//! The bench drops and recreates the database `darkroom_bench` on that server.

#[path = "queue_vs_pgmq/client.rs"]
mod client;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use client::{BODY_BYTES, Client, System};
use pgmq::PGMQueueExt;
use queue::{QueueAttributes, Queues};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use support::{fresh_database, in_batches, ms, percentile};
use tokio::sync::Mutex;

struct Bench {
    pool: PgPool,
    queues: Queues,
    pgmq: Arc<PGMQueueExt>,
    round: usize,
}

impl Bench {
    /// A fresh, empty queue of `system` for one measurement.
    async fn client(&mut self, system: System) -> Client {
        self.round += 1;
        let name: &'static str =
            Box::leak(format!("bench_{}_{}", system.name(), self.round).into_boxed_str());
        match system {
            System::Darkroom => {
                let (q, _) = self
                    .queues
                    .put(name, &QueueAttributes::default())
                    .await
                    .unwrap();
                Client::Darkroom(q)
            }
            System::Pgmq => {
                self.pgmq.create(name).await.unwrap();
                Client::Pgmq(self.pgmq.clone(), name)
            }
        }
    }

    /// Send, receive+delete and the full cycle of `total` messages, each on
    /// a fresh queue after a warm-up.
    async fn run(&mut self, system: System, total: usize, batch: usize, clients: usize) -> Run {
        let warm = self.client(system).await;
        send_phase(&warm, total / 10, batch, clients).await;
        consume_phase(&warm, total / 10, batch, clients).await;

        let c = self.client(system).await;
        self.settle().await;
        let send = send_phase(&c, total, batch, clients).await;
        self.settle().await;
        let consume = consume_phase(&c, total, batch, clients).await;

        let c = self.client(system).await;
        self.settle().await;
        let start = Instant::now();
        let producer = {
            let c = c.clone();
            tokio::spawn(async move { send_phase(&c, total, batch, clients).await })
        };
        consume_phase(&c, total, batch, clients).await;
        producer.await.unwrap();
        Run {
            send,
            consume: consume.msgs_per_sec,
            p50: consume.p50,
            p99: consume.p99,
            full: total as f64 / start.elapsed().as_secs_f64(),
        }
    }

    /// Vacuum, fresh statistics and a checkpoint before each phase, for both
    /// systems alike, as autovacuum would provide on a long-running server.
    /// Without the vacuum, this queue's tables (shared by its queues) would
    /// carry the dead rows of every earlier measurement, while each pgmq
    /// queue is a table of its own.
    async fn settle(&self) {
        sqlx::query("vacuum analyze")
            .execute(&self.pool)
            .await
            .unwrap();
        sqlx::query("checkpoint").execute(&self.pool).await.ok();
    }
}

/// One measurement of one system: every figure in msgs/s but the latencies.
#[derive(Clone)]
struct Run {
    send: f64,
    consume: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
    full: f64,
}

impl Run {
    /// The run with the median full-cycle rate (its other figures with it).
    fn median(mut runs: Vec<Run>) -> Option<Run> {
        runs.sort_by(|a, b| a.full.total_cmp(&b.full));
        runs.get(runs.len() / 2).cloned()
    }
}

struct Figures {
    msgs_per_sec: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
}

/// `clients` producers send `total` messages in batches of `batch`.
async fn send_phase(client: &Client, total: usize, batch: usize, clients: usize) -> f64 {
    let client = client.clone();
    in_batches(total, batch, clients, move || {
        let c = client.clone();
        async move { c.send(batch).await }
    })
    .await
}

/// `clients` consumers receive and delete until `total` are consumed.
async fn consume_phase(client: &Client, total: usize, batch: usize, clients: usize) -> Figures {
    let left = Arc::new(AtomicI64::new(total as i64));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (c, left, lat) = (client.clone(), left.clone(), latencies.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while left.load(Ordering::Relaxed) > 0 {
                    let n = c.receive_delete(batch, &mut mine).await;
                    if n == 0 {
                        tokio::task::yield_now().await;
                    }
                    left.fetch_sub(n as i64, Ordering::Relaxed);
                }
                lat.lock().await.extend(mine);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let lat = std::mem::take(&mut *latencies.lock().await);
    Figures {
        msgs_per_sec: rate,
        p50: percentile(lat.clone(), 0.5),
        p99: percentile(lat, 0.99),
    }
}

async fn wakeup_latency(bench: &mut Bench, system: System, samples: usize) -> (Duration, Duration) {
    let client = bench.client(system).await;
    let mut waits = Vec::with_capacity(samples);
    for _ in 0..samples {
        let receiver = tokio::spawn(client.clone().wait_for_one());
        // Give the receiver time to find the queue empty and start waiting.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let sent = Instant::now();
        client.send(1).await;
        let woke = receiver.await.unwrap();
        waits.push(woke.saturating_duration_since(sent));
    }
    (
        percentile(waits.clone(), 0.5).unwrap(),
        percentile(waits, 0.99).unwrap(),
    )
}

/// A comma-separated list from the environment, or the default.
fn list(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var).map_or_else(
        |_| default.to_vec(),
        |v| v.split(',').map(|n| n.trim().parse().expect(var)).collect(),
    )
}

#[tokio::main]
async fn main() {
    // Both systems share this pool. sqlx pings every connection it hands
    // out by default, a round trip per statement that a high-rate client
    // turns off (a broken connection still fails its statement and leaves
    // the pool).
    let options = PgPoolOptions::new()
        .max_connections(40)
        .test_before_acquire(false);
    let pool = fresh_database("darkroom_bench", options).await;
    queue::MIGRATOR.run(&pool).await.unwrap();
    let pgmq = Arc::new(PGMQueueExt::new_with_pool(pool.clone()).await);
    pgmq.install_sql_from_embedded()
        .await
        .expect("install pgmq SQL");
    let version: String = sqlx::query_scalar("show server_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut bench = Bench {
        queues: Queues::new(pool.clone()),
        pool,
        pgmq,
        round: 0,
    };
    println!(
        "Postgres {version}, {} cores; {BODY_BYTES} B messages; msgs/s (higher is better), latency ms\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| batch | clients | system | send | recv+delete | recv p50 | recv p99 | full cycle | full-cycle ratio |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    let rounds = list("BENCH_ROUNDS", &[3])[0].max(1);
    for batch in list("BENCH_BATCHES", &[1, 100]) {
        let total = list(
            "BENCH_MESSAGES",
            &[if batch == 1 { 6_000 } else { 150_000 }],
        )[0];
        for clients in list("BENCH_CLIENTS", &[1, 4, 16]) {
            let mut runs: [Vec<Run>; 2] = Default::default();
            // Rounds alternate which system goes first, so neither always
            // runs on the warmer (or more fragmented) server.
            for round in 0..rounds {
                let mut order = [System::Darkroom, System::Pgmq];
                if round % 2 == 1 {
                    order.reverse();
                }
                for system in order {
                    if std::env::var("BENCH_ONLY").is_ok_and(|only| only != system.name()) {
                        continue;
                    }
                    let run = bench.run(system, total, batch, clients).await;
                    runs[system as usize].push(run);
                }
            }
            let median: Vec<Option<Run>> = runs.into_iter().map(Run::median).collect();
            for system in [System::Darkroom, System::Pgmq] {
                let Some(run) = &median[system as usize] else {
                    continue;
                };
                let ratio = match (system, &median[System::Pgmq as usize]) {
                    (System::Darkroom, Some(pgmq)) => format!("**{:.2}×**", run.full / pgmq.full),
                    (System::Darkroom, None) => "-".into(),
                    (System::Pgmq, _) => "1.00×".into(),
                };
                println!(
                    "| {batch} | {clients} | {} | {:.0} | {:.0} | {} | {} | {:.0} | {ratio} |",
                    system.name(),
                    run.send,
                    run.consume,
                    ms(run.p50),
                    ms(run.p99),
                    run.full,
                );
            }
        }
    }
    if std::env::var("BENCH_SKIP_WAKEUP").is_ok() {
        return;
    }
    println!("\n| long-poll wake-up | p50 ms | p99 ms |\n|---|---:|---:|");
    for system in [System::Darkroom, System::Pgmq] {
        let (p50, p99) = wakeup_latency(&mut bench, system, 100).await;
        let label = match system {
            System::Darkroom => "darkroom (LISTEN/NOTIFY)",
            System::Pgmq => "pgmq read_with_poll (100 ms interval)",
        };
        println!("| {label} | {} | {} |", ms(Some(p50)), ms(Some(p99)));
    }
}
