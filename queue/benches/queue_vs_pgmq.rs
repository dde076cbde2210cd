//! This queue against pgmq, side by side in one run on the same Postgres.
//!
//! pgmq is installed from the `pgmq` crate's embedded SQL (pgmq.sql) into the
//! same bench database. Same message size (1 KiB), batch sizes (1, 100) and
//! client counts (1, 4, 16). For each: send, receive+delete from a backlog,
//! and the full cycle (producers and consumers at once), in messages/s, with
//! receive latency p50/p99; then long-poll wake-up latency.
//!
//! Run with `scripts/bench-queue` (provisions Postgres) or
//! `DATABASE_URL=... cargo bench -p queue --bench queue_vs_pgmq`. To narrow a
//! run: `BENCH_BATCHES=100 BENCH_CLIENTS=4 BENCH_ONLY=darkroom BENCH_SKIP_WAKEUP=1`.
//! The bench drops and recreates the database `darkroom_bench` on that server.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use pgmq::PGMQueueExt;
use queue::{NewMessage, Queue, QueueAttributes, Queues};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use tokio::sync::Mutex;

const BODY_BYTES: usize = 1024;
const LOCK: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    Darkroom,
    Pgmq,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Darkroom => "darkroom",
            System::Pgmq => "pgmq",
        }
    }
}

/// One system's client for one queue.
#[derive(Clone)]
enum Client {
    Darkroom(Queue),
    Pgmq(Arc<PGMQueueExt>, &'static str),
}

fn body() -> String {
    "x".repeat(BODY_BYTES)
}

impl Client {
    async fn send(&self, n: usize) {
        match self {
            Client::Darkroom(q) => {
                let batch: Vec<_> = (0..n).map(|_| NewMessage::new(body())).collect();
                q.send_batch(&batch).await.unwrap();
            }
            Client::Pgmq(p, name) => {
                let batch: Vec<_> = (0..n).map(|_| serde_json::Value::String(body())).collect();
                p.send_batch(name, &batch).await.unwrap();
            }
        }
    }

    /// Receives up to `n` and deletes them; returns how many.
    async fn receive_delete(&self, n: usize, latencies: &mut Vec<Duration>) -> usize {
        match self {
            Client::Darkroom(q) => {
                let start = Instant::now();
                let got = q.receive(n, LOCK).await.unwrap();
                latencies.push(start.elapsed());
                if !got.is_empty() {
                    let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
                    q.delete_batch(&receipts).await.unwrap();
                }
                got.len()
            }
            Client::Pgmq(p, name) => {
                let start = Instant::now();
                let got = p
                    .read_batch::<serde_json::Value>(name, LOCK.as_secs() as i32, n as i32)
                    .await
                    .unwrap();
                latencies.push(start.elapsed());
                if !got.is_empty() {
                    let ids: Vec<i64> = got.iter().map(|m| m.msg_id).collect();
                    p.delete_batch(name, &ids).await.unwrap();
                }
                got.len()
            }
        }
    }
}

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

    /// Checkpoint and fresh statistics before each phase, for both systems
    /// alike, as autovacuum would provide on a long-running server.
    async fn settle(&self) {
        sqlx::query("checkpoint").execute(&self.pool).await.ok();
        sqlx::query("analyze").execute(&self.pool).await.unwrap();
    }
}

struct Figures {
    msgs_per_sec: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    Some(v[i])
}

/// `clients` producers send `total` messages in batches of `batch`.
async fn send_phase(client: &Client, total: usize, batch: usize, clients: usize) -> f64 {
    let left = Arc::new(AtomicI64::new(total as i64));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (c, left) = (client.clone(), left.clone());
            tokio::spawn(async move {
                while left.fetch_sub(batch as i64, Ordering::Relaxed) > 0 {
                    c.send(batch).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
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

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0))
}

async fn wakeup_latency(bench: &mut Bench, system: System, samples: usize) -> (Duration, Duration) {
    let client = bench.client(system).await;
    let mut waits = Vec::with_capacity(samples);
    for _ in 0..samples {
        let receiver = {
            let c = client.clone();
            tokio::spawn(async move {
                match c {
                    Client::Darkroom(q) => {
                        let got = q
                            .receive_wait(1, LOCK, Duration::from_secs(10))
                            .await
                            .unwrap();
                        let at = Instant::now();
                        q.delete(&got[0].receipt).await.unwrap();
                        at
                    }
                    Client::Pgmq(p, name) => {
                        let got = p
                            .read_batch_with_poll::<serde_json::Value>(
                                name,
                                60,
                                1,
                                Some(Duration::from_secs(10)),
                                Some(Duration::from_millis(100)),
                            )
                            .await
                            .unwrap()
                            .unwrap();
                        let at = Instant::now();
                        p.delete(name, got[0].msg_id).await.unwrap();
                        at
                    }
                }
            })
        };
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

async fn connect() -> PgPool {
    let url =
        std::env::var("DATABASE_URL").expect("DATABASE_URL (any database on the server to use)");
    let admin: PgConnectOptions = url.parse().expect("DATABASE_URL");
    let mut conn = admin.connect().await.expect("connect to DATABASE_URL");
    sqlx::query("drop database if exists darkroom_bench with (force)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("create database darkroom_bench")
        .execute(&mut conn)
        .await
        .unwrap();
    PgPoolOptions::new()
        .max_connections(40)
        .connect_with(
            admin
                .database("darkroom_bench")
                .log_statements(log::LevelFilter::Off),
        )
        .await
        .unwrap()
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
    let pool = connect().await;
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
    for batch in list("BENCH_BATCHES", &[1, 100]) {
        let total = if batch == 1 { 4_000 } else { 40_000 };
        for clients in list("BENCH_CLIENTS", &[1, 4, 16]) {
            let mut cycle = [0.0f64; 2];
            let mut rows = Vec::new();
            for (i, system) in [System::Darkroom, System::Pgmq].into_iter().enumerate() {
                if std::env::var("BENCH_ONLY").is_ok_and(|only| only != system.name()) {
                    cycle[i] = f64::NAN;
                    continue;
                }
                // Warm-up on a queue of its own, then measure on a fresh one.
                let warm = bench.client(system).await;
                send_phase(&warm, total / 10, batch, clients).await;
                consume_phase(&warm, total / 10, batch, clients).await;

                let c = bench.client(system).await;
                bench.settle().await;
                let send = send_phase(&c, total, batch, clients).await;
                bench.settle().await;
                let consume = consume_phase(&c, total, batch, clients).await;

                let c = bench.client(system).await;
                bench.settle().await;
                let start = Instant::now();
                let producer = {
                    let c = c.clone();
                    tokio::spawn(async move { send_phase(&c, total, batch, clients).await })
                };
                let consumed = consume_phase(&c, total, batch, clients).await;
                producer.await.unwrap();
                let full = total as f64 / start.elapsed().as_secs_f64();
                let _ = consumed;
                cycle[i] = full;
                rows.push((system, send, consume, full));
            }
            for (system, send, consume, full) in rows {
                let ratio = if system == System::Darkroom {
                    format!("**{:.2}×**", cycle[0] / cycle[1])
                } else {
                    "1.00×".into()
                };
                println!(
                    "| {batch} | {clients} | {} | {:.0} | {:.0} | {} | {} | {:.0} | {ratio} |",
                    system.name(),
                    send,
                    consume.msgs_per_sec,
                    ms(consume.p50),
                    ms(consume.p99),
                    full,
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
