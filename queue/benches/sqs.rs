//! The SQS endpoint against the native queue HTTP API, side by side in one
//! run on the same server and database: clients that each send a batch of
//! 10 (SendMessageBatch / `POST messages`), receive up to 10
//! (ReceiveMessage / `POST receive`) and delete what came
//! (DeleteMessageBatch / `POST delete`), with 1, 4 and 16 clients. The SQS
//! side goes through the Rust AWS SDK (SigV4, AWS JSON 1.0), the native
//! side through reqwest with a bearer token; both servers are one axum app
//! in this process, as `darkroom-queue serve` runs them, on a runtime of
//! its own whose threads' CPU per message is reported beside the rates
//! (the clients' CPU, the SDK's signing included, is not the endpoint's).
//!
//! Run with `scripts/bench-queue sqs`. `BENCH_ROUNDS` (default 3, orders
//! alternating; medians shown), `BENCH_MESSAGES` (per phase, default
//! 20,000), `BENCH_CLIENTS` (one client count alone, to profile it).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use queue::{AdminToken, Queues, Router};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use support::{env_usize, median, random_body};

const TOKEN: &str = "sqs-bench-admin-token-7c1e9a4f2b";
const BATCH: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Sqs,
    Native,
}

#[derive(Clone)]
struct Clients {
    base: String,
    sqs: aws_sdk_sqs::Client,
    http: reqwest::Client,
    body: Arc<String>,
}

impl Clients {
    /// One cycle: send 10, receive up to 10, delete them; returns how many
    /// were deleted.
    async fn cycle(&self, side: Side, queue: &str) -> usize {
        match side {
            Side::Sqs => self.sqs_cycle(queue).await,
            Side::Native => self.native_cycle(queue).await,
        }
    }

    async fn sqs_cycle(&self, queue: &str) -> usize {
        let url = format!("{}/000000000000/{queue}", self.base);
        let entries = (0..BATCH)
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(self.body.as_str())
                    .build()
                    .unwrap()
            })
            .collect();
        let sent = self
            .sqs
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.successful().len(), BATCH);
        let got = self
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(BATCH as i32)
            .visibility_timeout(60)
            .send()
            .await
            .unwrap();
        let messages = got.messages();
        if messages.is_empty() {
            return 0;
        }
        let deletes = messages
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
        let deleted = self
            .sqs
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(deletes))
            .send()
            .await
            .unwrap();
        deleted.successful().len()
    }

    async fn native(&self, path: String, body: Value) -> Value {
        let res = self
            .http
            .post(format!("{}/api/queues/{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        res.json().await.unwrap()
    }

    async fn native_cycle(&self, queue: &str) -> usize {
        let messages: Vec<Value> = (0..BATCH)
            .map(|_| json!({ "body": self.body.as_str() }))
            .collect();
        self.native(format!("{queue}/messages"), json!({ "messages": messages }))
            .await;
        let got = self
            .native(
                format!("{queue}/receive"),
                json!({ "max": BATCH, "lock": 60 }),
            )
            .await;
        let receipts: Vec<Value> = got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["receipt"].clone())
            .collect();
        if receipts.is_empty() {
            return 0;
        }
        let deleted = self
            .native(format!("{queue}/delete"), json!({ "receipts": receipts }))
            .await;
        deleted["deleted"].as_array().unwrap().len()
    }
}

const SERVER_THREADS: &str = "bench-server";

/// What one phase measured.
struct Measured {
    rate: f64,
    /// Server CPU (its runtime's threads) per message, in µs.
    server_us: f64,
}

/// Messages per second through `side` with `clients` clients cycling until
/// `total` messages were sent, and the server's CPU per message.
async fn phase(clients: &Clients, side: Side, queue: &str, n: usize, total: usize) -> Measured {
    let cpu_before = support::server::threads_cpu(SERVER_THREADS);
    let left = Arc::new(AtomicI64::new(total as i64));
    let deleted = Arc::new(AtomicI64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (c, left, deleted, queue) = (
                clients.clone(),
                left.clone(),
                deleted.clone(),
                queue.to_owned(),
            );
            tokio::spawn(async move {
                while left.fetch_sub(BATCH as i64, Ordering::Relaxed) > 0 {
                    let d = c.cycle(side, &queue).await;
                    deleted.fetch_add(d as i64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let messages = deleted.load(Ordering::Relaxed) as f64;
    Measured {
        rate: messages / start.elapsed().as_secs_f64(),
        server_us: (support::server::threads_cpu(SERVER_THREADS) - cpu_before) * 1e6 / messages,
    }
}

#[tokio::main]
async fn main() {
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let total = env_usize("BENCH_MESSAGES", 20_000);
    let pool = support::fresh_database(
        "darkroom_sqs_bench",
        PgPoolOptions::new().max_connections(32),
    )
    .await;
    queue::MIGRATOR.run(&pool).await.unwrap();
    let router = Router::new(Queues::new(pool.clone()));
    let config = support::sqs::config();
    let app = queue::http_router(router.clone(), Some(AdminToken::new(TOKEN).unwrap()))
        .merge(queue::sqs_router(router.clone(), config));
    // The server on a runtime of its own, whose threads' CPU is the
    // endpoints' cost; the clients (the SDK's signing, reqwest) run on this
    // one.
    let base = support::server::serve_apart(app, SERVER_THREADS);

    let sqs = support::sqs::client(&base);
    let clients = Clients {
        base,
        sqs,
        http: reqwest::Client::new(),
        body: Arc::new(random_body(1024)),
    };
    clients
        .sqs
        .create_queue()
        .queue_name("bench-sqs")
        .send()
        .await
        .unwrap();
    router
        .put("bench-native", &queue::QueueAttributes::default())
        .await
        .unwrap();

    println!(
        "SQS endpoint vs native HTTP API: send 10 + receive 10 + delete 10 per cycle, 1 KiB bodies, {total} messages per phase, median of {rounds} rounds"
    );
    println!();
    println!(
        "| clients | native HTTP msgs/s | SQS msgs/s | SQS / native | server CPU µs/msg, native | SQS | SQS / native |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let counts = match std::env::var("BENCH_CLIENTS") {
        Ok(n) => vec![n.parse().expect("BENCH_CLIENTS: a number of clients")],
        Err(_) => vec![1, 4, 16],
    };
    for n in counts {
        let (mut native, mut sqs) = (Vec::new(), Vec::new());
        let (mut native_cpu, mut sqs_cpu) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [Side::Native, Side::Sqs]
            } else {
                [Side::Sqs, Side::Native]
            };
            for side in order {
                let queue = match side {
                    Side::Sqs => "bench-sqs",
                    Side::Native => "bench-native",
                };
                let m = phase(&clients, side, queue, n, total).await;
                match side {
                    Side::Sqs => (sqs.push(m.rate), sqs_cpu.push(m.server_us)),
                    Side::Native => (native.push(m.rate), native_cpu.push(m.server_us)),
                };
            }
        }
        let (native, sqs) = (median(native), median(sqs));
        let (native_cpu, sqs_cpu) = (median(native_cpu), median(sqs_cpu));
        println!(
            "| {n} | {native:.0} | {sqs:.0} | **{:.2}×** | {native_cpu:.1} | {sqs_cpu:.1} | {:.2}× |",
            sqs / native,
            sqs_cpu / native_cpu
        );
    }
}
