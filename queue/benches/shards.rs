//! One queue spread over 1, 2 and 3 shards, in one run: the full cycle
//! (producers and consumers at once), at batch 100 by default, against the same queue
//! reached directly (a `Queue` on shard 1, no router) as the yardstick.
//!
//! Four private clusters of the installed server are started (a control
//! database and three shards; initdb, no fsync), all on this machine's
//! cores, so more shards cannot add CPU here: the question is whether
//! spreading loses throughput, and what the router itself costs. For each
//! configuration: messages/s, the clusters' CPU per message (every Postgres
//! process, from /proc) and this process's CPU per message; the router's
//! own cost is the client CPU above the direct row's.
//!
//! Run with `scripts/bench-queue shards`. `BENCH_ROUNDS` (default 3; each
//! figure's median is shown), `BENCH_BATCH` (default 100), `BENCH_MESSAGES`
//! (default 150,000; 6,000 at batch 1), `BENCH_CLIENTS` (producers, and as
//! many consumers; default 4).

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use queue::{NewMessage, Queue, QueueAttributes, Queues, Routed, Router};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use support::{in_batches, random_body};
use testkit::cluster::Cluster;

const LOCK: Duration = Duration::from_secs(60);
/// Consumers long-poll, as real ones do, rather than spin on empty
/// receives: a spinning consumer's empty statements would be counted as
/// the cost of the messages.
const WAIT: Duration = Duration::from_millis(100);

#[derive(Clone)]
enum Target {
    Direct(Queue),
    Routed(Routed),
}

impl Target {
    async fn send(&self, batch: &[NewMessage]) {
        match self {
            Target::Direct(q) => drop(q.send_batch(batch).await.unwrap()),
            Target::Routed(q) => drop(q.send_batch(batch).await.unwrap()),
        }
    }

    async fn receive_delete(&self, batch: usize) -> usize {
        let got = match self {
            Target::Direct(q) => q.receive_wait(batch, LOCK, WAIT).await.unwrap(),
            Target::Routed(q) => q.receive_wait(batch, LOCK, WAIT).await.unwrap(),
        };
        if got.is_empty() {
            return 0;
        }
        let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
        let outcome = match self {
            Target::Direct(q) => q.delete_batch(&receipts).await.unwrap(),
            Target::Routed(q) => q.delete_batch(&receipts).await.unwrap(),
        };
        assert!(outcome.stale.is_empty());
        got.len()
    }
}

/// This process's CPU time so far (user and system), from /proc.
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Duration::from_millis((f[11] + f[12]) * 10)
}

struct Run {
    rate: f64,
    postgres_us: f64,
    client_us: f64,
}

/// How one run is shaped: `total` messages, `batch` per call, `clients`
/// producers and as many consumers.
#[derive(Clone, Copy)]
struct Shape {
    total: usize,
    batch: usize,
    clients: usize,
}

/// The full cycle of a `shape` run through `target`.
async fn full_cycle(target: &Target, shape: Shape, clusters: &[Cluster]) -> Run {
    let Shape {
        total,
        batch,
        clients,
    } = shape;
    let bodies: Arc<Vec<NewMessage>> = Arc::new(
        (0..batch)
            .map(|_| NewMessage::new(random_body(1024)))
            .collect(),
    );
    let pg_before: Duration = clusters.iter().map(Cluster::cpu_time).sum();
    let own_before = own_cpu();
    let start = Instant::now();
    let producers = tokio::spawn({
        let target = target.clone();
        in_batches(total, batch, clients, move || {
            let (t, b) = (target.clone(), bodies.clone());
            async move { t.send(&b).await }
        })
    });
    let left = Arc::new(AtomicI64::new(total as i64));
    // When the last message was consumed: the other consumers may still
    // be waiting out a long poll, which is not part of the rate.
    let done = Arc::new(OnceLock::new());
    let consumers: Vec<_> = (0..clients)
        .map(|_| {
            let (t, left, done) = (target.clone(), left.clone(), done.clone());
            tokio::spawn(async move {
                while left.load(Ordering::Relaxed) > 0 {
                    let n = t.receive_delete(batch).await as i64;
                    if n > 0 && left.fetch_sub(n, Ordering::Relaxed) <= n {
                        let _ = done.set(Instant::now());
                    }
                }
            })
        })
        .collect();
    producers.await.unwrap();
    for c in consumers {
        c.await.unwrap();
    }
    let elapsed = *done.get().expect("every message consumed") - start;
    let pg: Duration = clusters.iter().map(Cluster::cpu_time).sum::<Duration>() - pg_before;
    let own = own_cpu() - own_before;
    Run {
        rate: total as f64 / elapsed.as_secs_f64(),
        postgres_us: pg.as_secs_f64() * 1e6 / total as f64,
        client_us: own.as_secs_f64() * 1e6 / total as f64,
    }
}

/// A pool like the router's own to each shard.
async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(10)
        .test_before_acquire(false)
        .connect(url)
        .await
        .unwrap()
}

/// Vacuum and a checkpoint on every shard before each run, as autovacuum
/// would provide on a long-running server.
async fn settle(shards: &[PgPool]) {
    for p in shards {
        sqlx::query("vacuum analyze").execute(p).await.unwrap();
        sqlx::query("checkpoint").execute(p).await.unwrap();
    }
}

fn env(var: &str, default: usize) -> usize {
    std::env::var(var).map_or(default, |v| v.parse().expect(var))
}

#[tokio::main]
async fn main() {
    let rounds = env("BENCH_ROUNDS", 3).max(1);
    let batch = env("BENCH_BATCH", 100).max(1);
    let shape = Shape {
        batch,
        total: env("BENCH_MESSAGES", if batch == 1 { 6_000 } else { 150_000 }),
        clients: env("BENCH_CLIENTS", 4),
    };
    let Shape { total, clients, .. } = shape;
    let control = Cluster::start();
    let clusters: Vec<Cluster> = (0..3).map(|_| Cluster::start()).collect();
    let control_pool = pool(&control.url()).await;
    queue::MIGRATOR.run(&control_pool).await.unwrap();
    let router = Router::new(Queues::new(control_pool));
    let mut shard_pools = Vec::new();
    for (i, c) in clusters.iter().enumerate() {
        router
            .add_shard(&format!("s{}", i + 1), &c.url())
            .await
            .unwrap();
        shard_pools.push(pool(&c.url()).await);
    }
    let direct = Queues::new(shard_pools[0].clone());

    let configs: [(&str, &[&str]); 4] = [
        ("direct (Queue on s1, no router)", &[]),
        ("router, 1 shard", &["s1"]),
        ("router, 2 shards", &["s1", "s2"]),
        ("router, 3 shards", &["s1", "s2", "s3"]),
    ];
    let mut runs: Vec<Vec<Run>> = configs.iter().map(|_| Vec::new()).collect();
    let mut n = 0;
    for round in 0..rounds {
        // Each round starts at the next configuration, so none always runs
        // on the warmest (or most fragmented) clusters.
        for k in 0..configs.len() {
            let i = (k + round) % configs.len();
            let shards = configs[i].1;
            n += 1;
            let name = format!("bench_{n}");
            let target = if shards.is_empty() {
                let (q, _) = direct
                    .put(&name, &QueueAttributes::default())
                    .await
                    .unwrap();
                Target::Direct(q)
            } else {
                router
                    .create_on(&name, &QueueAttributes::default(), shards)
                    .await
                    .unwrap();
                Target::Routed(router.open(&name).await.unwrap())
            };
            let warm = Shape {
                total: total / 10,
                ..shape
            };
            full_cycle(&target, warm, &clusters).await;
            settle(&shard_pools).await;
            runs[i].push(full_cycle(&target, shape, &clusters).await);
        }
    }
    println!(
        "Full cycle, batch {batch}, {clients} producers + {clients} consumers, {total} × 1 KiB \
         messages, medians of {rounds} rounds; {} cores shared by every cluster\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| configuration | msgs/s | vs router, 1 shard | Postgres CPU µs/msg | client CPU µs/msg |"
    );
    println!("|---|---:|---:|---:|---:|");
    // Each figure's own median: the CPU figures are steadier than the rate.
    let median = |runs: &[Run], figure: fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(figure).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<Run> = runs
        .iter()
        .map(|r| Run {
            rate: median(r, |r| r.rate),
            postgres_us: median(r, |r| r.postgres_us),
            client_us: median(r, |r| r.client_us),
        })
        .collect();
    for ((label, _), run) in configs.iter().zip(&medians) {
        println!(
            "| {label} | {:.0} | {:.2}× | {:.1} | {:.1} |",
            run.rate,
            run.rate / medians[1].rate,
            run.postgres_us,
            run.client_us
        );
    }
    println!("\nRates of each round (msgs/s):");
    for ((label, _), r) in configs.iter().zip(&runs) {
        let rates: Vec<String> = r.iter().map(|r| format!("{:.0}", r.rate)).collect();
        println!("- {label}: {}", rates.join(", "));
    }
    let router_us = medians[1].client_us - medians[0].client_us;
    println!(
        "\nRouter: {router_us:.2} µs of client CPU per message over the direct queue, {:.1} % of \
         the {:.1} µs Postgres spends per message (1 shard).",
        100.0 * router_us / medians[1].postgres_us,
        medians[1].postgres_us
    );
}
