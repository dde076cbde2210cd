//! The two systems the bench compares, behind one client: this queue and
//! pgmq, each sending and receiving the same bodies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pgmq::PGMQueueExt;
use queue::{NewMessage, Queue};

use crate::support::random_body;

pub const BODY_BYTES: usize = 1024;
pub const LOCK: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum System {
    Darkroom = 0,
    Pgmq = 1,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Darkroom => "darkroom",
            System::Pgmq => "pgmq",
        }
    }
}

/// One system's client for one queue.
#[derive(Clone)]
pub enum Client {
    Darkroom(Queue),
    Pgmq(Arc<PGMQueueExt>, &'static str),
}

/// Distinct random bodies, so that neither system gains from compressing
/// them (bodies stored together would compress to nothing if they
/// repeated).
fn bodies() -> &'static [String] {
    static BODIES: OnceLock<Vec<String>> = OnceLock::new();
    BODIES.get_or_init(|| (0..1000).map(|_| random_body(BODY_BYTES)).collect())
}

/// `n` bodies, each different from the others.
fn distinct_bodies(n: usize) -> impl Iterator<Item = String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let start = NEXT.fetch_add(n, Ordering::Relaxed);
    (start..start + n).map(|i| bodies()[i % 1000].clone())
}

impl Client {
    pub async fn send(&self, n: usize) {
        match self {
            Client::Darkroom(q) => {
                let batch: Vec<_> = distinct_bodies(n).map(NewMessage::new).collect();
                q.send_batch(&batch).await.unwrap();
            }
            Client::Pgmq(p, name) => {
                let batch: Vec<_> = distinct_bodies(n).map(serde_json::Value::String).collect();
                p.send_batch(name, &batch).await.unwrap();
            }
        }
    }

    /// Receives up to `n` and deletes them; returns how many.
    pub async fn receive_delete(&self, n: usize, latencies: &mut Vec<Duration>) -> usize {
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

    /// Waits up to 10 s for one message, deletes it and returns when it
    /// arrived.
    pub async fn wait_for_one(self) -> Instant {
        match self {
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
    }
}
