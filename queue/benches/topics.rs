//! Publishing to a topic with 1, 10 and 100 queue subscriptions: batches of
//! 100 published, copies delivered into the subscribed queues per second;
//! beside the same copies sent by the client itself, one `send_batch` per
//! queue (what a publisher without topics would do, though not atomically),
//! in one run on the same Postgres.
//!
//! Run with `scripts/bench-queue topics`. `BENCH_ROUNDS` (default 3,
//! medians; orders alternate), `BENCH_COPIES` (copies per phase, default
//! 200,000).

mod support;

use std::time::Instant;

use queue::{NewMessage, Publication, Queue, Queues, SubscriptionSpec, TopicSettings, Topics};
use sqlx::postgres::PgPoolOptions;
use support::{env_usize, median, random_body};

const BATCH: usize = 100;

/// Copies landed per second publishing `batches` batches to `topic`.
async fn publish(
    topics: &Topics,
    topic: &str,
    batch: &[Publication],
    batches: usize,
    n: usize,
) -> f64 {
    let start = Instant::now();
    for _ in 0..batches {
        topics.publish(topic, batch).await.unwrap();
    }
    (batches * batch.len() * n) as f64 / start.elapsed().as_secs_f64()
}

/// Copies landed per second sending each batch to every queue in turn.
async fn fan_out(queues: &[Queue], batch: &[NewMessage], batches: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..batches {
        for q in queues {
            q.send_batch(batch).await.unwrap();
        }
    }
    (batches * batch.len() * queues.len()) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let copies = env_usize("BENCH_COPIES", 200_000);
    let pool = support::fresh_database(
        "darkroom_topics_bench",
        PgPoolOptions::new().max_connections(8),
    )
    .await;
    queue::MIGRATOR.run(&pool).await.unwrap();
    let queues = Queues::new(pool.clone());
    let topics = Topics::new(queues.clone());
    let body = random_body(1024);
    let publications: Vec<Publication> =
        (0..BATCH).map(|_| Publication::new(body.clone())).collect();
    let messages: Vec<NewMessage> = (0..BATCH).map(|_| NewMessage::new(body.clone())).collect();

    println!(
        "Publish batches of {BATCH} (1 KiB bodies) to a topic with n queue subscriptions vs the client sending each batch to the n queues itself; copies landed per second, median of {rounds} rounds"
    );
    println!();
    println!(
        "| subscriptions | topic publish, copies/s | client fan-out, copies/s | topic / fan-out |"
    );
    println!("|---:|---:|---:|---:|");
    for n in [1, 10, 100] {
        let topic = format!("bench-{n}");
        topics
            .put_topic(&topic, &TopicSettings::default())
            .await
            .unwrap();
        let mut targets = Vec::new();
        for i in 0..n {
            let name = format!("bench-{n}-{i}");
            let (q, _) = queues.put(&name, &Default::default()).await.unwrap();
            topics
                .subscribe(&topic, &name, &SubscriptionSpec::queue(&name))
                .await
                .unwrap();
            targets.push(q);
        }
        let batches = (copies / (BATCH * n)).max(5);
        let (mut via_topic, mut direct) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            if round % 2 == 0 {
                via_topic.push(publish(&topics, &topic, &publications, batches, n).await);
                direct.push(fan_out(&targets, &messages, batches).await);
            } else {
                direct.push(fan_out(&targets, &messages, batches).await);
                via_topic.push(publish(&topics, &topic, &publications, batches, n).await);
            }
            for q in &targets {
                q.purge().await.unwrap();
            }
        }
        let (t, d) = (median(via_topic), median(direct));
        println!("| {n} | {t:.0} | {d:.0} | **{:.2}×** |", t / d);
    }
}
