//! FIFO receives through the SQS endpoint: one message group of a backlog
//! drained by ReceiveMessage + DeleteMessageBatch, asking for 10 per call
//! beside asking for 1, in one run on one server and database.
//!
//! Before ordered queues handed out a group's batch, a receive took one
//! message per group whatever it asked for: draining one group then went
//! exactly as fast as asking for 1 does, which makes the second column
//! the rate before this change, measured now.
//!
//! Run with `scripts/bench-queue sqs-fifo`. `BENCH_ROUNDS` (default 3,
//! orders alternating; medians shown), `BENCH_MESSAGES` (per phase,
//! default 2,000).

mod support;

use std::time::Instant;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, QueueAttributeName, SendMessageBatchRequestEntry,
};
use queue::{Queues, Router};
use sqlx::postgres::PgPoolOptions;
use support::server::{serve_apart, threads_cpu};
use support::{env_usize, median, random_body};

const SERVER_THREADS: &str = "bench-server";

/// Fills the group `g` of `url` with `n` messages, ids unique to `round`.
async fn fill(sqs: &Client, url: &str, n: usize, round: usize, body: &str) {
    for start in (0..n).step_by(10) {
        let entries = (start..(start + 10).min(n))
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .message_group_id("g")
                    .message_deduplication_id(format!("{round}-{i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        let sent = sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(sent.failed().is_empty());
    }
}

/// Drains `n` messages of `url`, `per_call` at a time: messages per second
/// and the server's CPU per message in µs.
async fn drain(sqs: &Client, url: &str, n: usize, per_call: i32) -> (f64, f64) {
    let cpu = threads_cpu(SERVER_THREADS);
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(per_call)
            .send()
            .await
            .unwrap();
        let entries: Vec<_> = got
            .messages()
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        assert!(!entries.is_empty(), "the group ran dry at {done} of {n}");
        done += entries.len();
        sqs.delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    (rate, (threads_cpu(SERVER_THREADS) - cpu) * 1e6 / n as f64)
}

#[tokio::main]
async fn main() {
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let n = env_usize("BENCH_MESSAGES", 2_000);
    let pool = support::fresh_database(
        "darkroom_sqs_fifo_bench",
        PgPoolOptions::new().max_connections(8),
    )
    .await;
    queue::MIGRATOR.run(&pool).await.unwrap();
    let router = Router::new(Queues::new(pool.clone()));
    let app = queue::sqs_router(router, support::sqs::config());
    let sqs = support::sqs::client(&serve_apart(app, SERVER_THREADS));
    let url = sqs
        .create_queue()
        .queue_name("bench.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let body = random_body(1024);

    let (mut tens, mut ones, mut ten_cpu, mut one_cpu) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let order = if round % 2 == 0 { [10, 1] } else { [1, 10] };
        for (k, per_call) in order.into_iter().enumerate() {
            fill(&sqs, &url, n, 2 * round + k, &body).await;
            let (rate, cpu) = drain(&sqs, &url, n, per_call).await;
            let (rates, cpus) = if per_call == 10 {
                (&mut tens, &mut ten_cpu)
            } else {
                (&mut ones, &mut one_cpu)
            };
            rates.push(rate);
            cpus.push(cpu);
        }
    }
    let (ten, one) = (median(tens), median(ones));
    println!(
        "FIFO: one group of {n} messages (1 KiB) drained by ReceiveMessage + DeleteMessageBatch, median of {rounds} rounds"
    );
    println!();
    println!("| asking for | msgs/s | server CPU µs/msg |");
    println!("|---:|---:|---:|");
    println!(
        "| 1 per call (the rate before) | {one:.0} | {:.1} |",
        median(one_cpu)
    );
    println!("| 10 per call | {ten:.0} | {:.1} |", median(ten_cpu));
    println!();
    println!("10 per call / before: **{:.1}×**", ten / one);
}
