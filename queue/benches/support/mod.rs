//! What the queue benches share: a database of their own, random bodies
//! and latency figures.

#![allow(dead_code)]

pub mod server;
pub mod sqs;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// Drops and recreates the database `name` on the server of `DATABASE_URL`
/// (whichever database that names) and connects `pool` to it, with
/// statement logging off.
pub async fn fresh_database(name: &str, pool: PgPoolOptions) -> PgPool {
    let url =
        std::env::var("DATABASE_URL").expect("DATABASE_URL (any database on the server to use)");
    let admin: PgConnectOptions = url.parse().expect("DATABASE_URL");
    let mut conn = admin.connect().await.expect("connect to DATABASE_URL");
    for statement in [
        format!("drop database if exists {name} with (force)"),
        format!("create database {name}"),
    ] {
        sqlx::query(&statement).execute(&mut conn).await.unwrap();
    }
    let options = admin.database(name).log_statements(log::LevelFilter::Off);
    pool.connect_with(options).await.unwrap()
}

/// A random body of `bytes` characters: incompressible, like real
/// encrypted or already compressed payloads, so that bodies stored together
/// take their real size on disk and in the WAL.
pub fn random_body(bytes: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(bytes)
        .map(char::from)
        .collect()
}

/// The `p`-quantile (0 to 1) of `v`, if it has any values.
pub fn percentile(mut v: Vec<Duration>, p: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    Some(v[i])
}

/// Milliseconds, two decimals; `-` for no figure.
pub fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0))
}

/// Runs `clients` tasks at once, each taking `batch` of the `total` at a
/// time and calling `work` for them, until none are left; returns the rate
/// in items per second.
pub async fn in_batches<F, Fut>(total: usize, batch: usize, clients: usize, work: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let left = Arc::new(AtomicI64::new(total as i64));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (work, left) = (work.clone(), left.clone());
            tokio::spawn(async move {
                while left.fetch_sub(batch as i64, Ordering::Relaxed) > 0 {
                    work().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// A whole number from the environment variable `name`, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
