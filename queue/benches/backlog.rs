//! Does the queue stay fast with a huge backlog, and under sustained churn?
//!
//! 1. Figures on an empty queue: send, receive+delete, full cycle (batch
//!    100, 4 producers and 4 consumers) and `stats` latency.
//! 2. A backlog of `BENCH_BACKLOG` messages (default 10,000,000; random 256 B
//!    bodies, sent in batches of 1000) is put into a second queue; the same
//!    figures are then taken on that queue, consumers working at its head
//!    while producers add at its tail.
//! 3. Churn: 8 clients each send 100, receive 100 and delete them, over and
//!    over, on the backlog queue for `BENCH_CHURN_SECS` (default 300),
//!    printing the rate of each 30 s window and, at the start and the end,
//!    the size of the live-state table and its indexes, which must not grow
//!    (queue maintenance vacuums them).
//!
//! Run with `scripts/bench-queue backlog` (provisions Postgres). It uses its
//! own database `darkroom_backlog` (dropped and recreated) and about 4 GB of
//! disk for the default backlog.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use queue::{NewMessage, Queue, QueueAttributes, Queues};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use support::{fresh_database, in_batches, ms, percentile, random_body};

const BATCH: usize = 100;
const CLIENTS: usize = 4;
const LOCK: Duration = Duration::from_secs(60);
/// Messages per phase on the measured queues.
const PHASE: usize = 100_000;

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var).map_or(default, |v| v.parse().expect(var))
}

/// `clients` producers send `total` messages of `bytes` random bytes in
/// batches of `batch`; returns msgs/s.
async fn send(q: &Queue, total: usize, batch: usize, bytes: usize, clients: usize) -> f64 {
    let messages = (0..batch).map(|_| NewMessage::new(random_body(bytes)));
    let messages: Arc<Vec<_>> = Arc::new(messages.collect());
    let q = q.clone();
    in_batches(total, batch, clients, move || {
        let (q, messages) = (q.clone(), messages.clone());
        async move {
            q.send_batch(&messages).await.unwrap();
        }
    })
    .await
}

/// Receives and deletes until `total` are consumed or `stop` is set;
/// returns msgs/s. `done` counts every message consumed.
async fn consume(q: &Queue, total: usize, done: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> f64 {
    let left = Arc::new(AtomicI64::new(total as i64));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (q, left, done, stop) = (q.clone(), left.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while left.load(Ordering::Relaxed) > 0 && !stop.load(Ordering::Relaxed) {
                    let got = q.receive(BATCH, LOCK).await.unwrap();
                    if got.is_empty() {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
                    q.delete_batch(&receipts).await.unwrap();
                    left.fetch_sub(got.len() as i64, Ordering::Relaxed);
                    done.fetch_add(got.len() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Producers and consumers at once for `total` messages; msgs/s consumed.
async fn full_cycle(q: &Queue, total: usize) -> f64 {
    let producer = {
        let q = q.clone();
        tokio::spawn(async move { send(&q, total, BATCH, 1024, CLIENTS).await })
    };
    let rate = consume(q, total, Default::default(), Default::default()).await;
    producer.await.unwrap();
    rate
}

/// The median and 99th percentile of 200 `stats` calls.
async fn stats_latency(q: &Queue) -> (Option<Duration>, Option<Duration>) {
    let mut v = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        q.stats().await.unwrap();
        v.push(start.elapsed());
    }
    (percentile(v.clone(), 0.5), percentile(v, 0.99))
}

async fn figures(pool: &PgPool, label: &str, q: &Queue) {
    // Needs pg_checkpoint; without it the figures are only a little noisier.
    sqlx::query("checkpoint").execute(pool).await.ok();
    let send_rate = send(q, PHASE, BATCH, 1024, CLIENTS).await;
    let consume_rate = consume(q, PHASE, Default::default(), Default::default()).await;
    let full = full_cycle(q, PHASE).await;
    let (p50, p99) = stats_latency(q).await;
    let stats = q.stats().await.unwrap();
    println!(
        "| {label} | {} | {send_rate:.0} | {consume_rate:.0} | {full:.0} | {} | {} |",
        stats.visible,
        ms(p50),
        ms(p99)
    );
}

async fn table_sizes(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "select format('table %s, indexes %s, dead rows %s, autovacuums %s',
                pg_size_pretty(pg_relation_size('queue_messages')),
                pg_size_pretty(pg_indexes_size('queue_messages')),
                n_dead_tup, autovacuum_count)
         from pg_stat_user_tables where relname = 'queue_messages'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::main]
async fn main() {
    let backlog = env_usize("BENCH_BACKLOG", 10_000_000);
    let churn = Duration::from_secs(env_usize("BENCH_CHURN_SECS", 300) as u64);
    let pool = fresh_database("darkroom_backlog", PgPoolOptions::new().max_connections(24)).await;
    queue::MIGRATOR.run(&pool).await.unwrap();
    // As darkroom-web and darkroom-queue serve do.
    let maintenance = tokio::spawn(queue::Maintenance::new(pool.clone()).run(
        Duration::from_secs(10),
        tokio_util::sync::CancellationToken::new(),
    ));
    let queues = Queues::new(pool.clone());
    let attrs = QueueAttributes::default();
    let (fresh, _) = queues.put("fresh", &attrs).await.unwrap();
    let (big, _) = queues.put("backlog", &attrs).await.unwrap();

    println!(
        "1 KiB messages, batches of {BATCH}, {CLIENTS} producers and {CLIENTS} consumers; msgs/s\n"
    );
    println!("| queue | backlog | send | recv+delete | full cycle | stats p50 ms | stats p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    figures(&pool, "empty", &fresh).await;

    let start = Instant::now();
    let fill = send(&big, backlog, 1000, 256, 4).await;
    eprintln!(
        "backlog of {backlog} sent in {:.0} s ({fill:.0} msgs/s)",
        start.elapsed().as_secs_f64()
    );
    sqlx::query("vacuum analyze").execute(&pool).await.unwrap();
    figures(&pool, "backlog", &big).await;

    println!(
        "\nChurn on the backlog queue: each client sends 100, receives 100, deletes them, again and again (msgs/s per 30 s window):"
    );
    println!("start: {}", table_sizes(&pool).await);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2 * CLIENTS)
        .map(|_| {
            let (big, done, stop) = (big.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let msgs: Vec<_> = (0..BATCH)
                    .map(|_| NewMessage::new(random_body(1024)))
                    .collect();
                while !stop.load(Ordering::Relaxed) {
                    big.send_batch(&msgs).await.unwrap();
                    let got = big.receive(BATCH, LOCK).await.unwrap();
                    let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
                    if !receipts.is_empty() {
                        big.delete_batch(&receipts).await.unwrap();
                    }
                    done.fetch_add(got.len() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut last = 0;
    let mut windows = Vec::new();
    while start.elapsed() < churn {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let now = done.load(Ordering::Relaxed);
        windows.push(format!("{:.0}", (now - last) as f64 / 30.0));
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    println!("{}", windows.join(", "));
    println!("end: {}", table_sizes(&pool).await);
    let (p50, p99) = stats_latency(&big).await;
    println!(
        "stats on {} messages: p50 {} ms, p99 {} ms",
        big.stats().await.unwrap().visible,
        ms(p50),
        ms(p99)
    );
    maintenance.abort();
}
