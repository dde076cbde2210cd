//! Queues changing shards and shards going down: online moves under load,
//! ordered moves, retiring and reviving parts, a stopped cluster, and
//! stats, rewind and redrive over every part.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::routing::{TTL, receive_all, router, shards, spread};
use common::{LOCK, dead_lettering, ordered_attributes};
use queue::{Error, MessageRef, NewMessage, QueueAttributes, Queues, RewindTo};
use sqlx::PgPool;

/// How long a loop polls for what it waits on before the test fails: a
/// move that never settles, or messages that never come, must fail the
/// test rather than hang it.
const PATIENCE: Duration = Duration::from_secs(60);

/// A point [`PATIENCE`] from now; `check` fails the test once it passed.
struct Deadline(std::time::Instant);

impl Deadline {
    fn start() -> Self {
        Self(std::time::Instant::now() + PATIENCE)
    }

    #[track_caller]
    fn check(&self, waiting_for: &str) {
        assert!(
            std::time::Instant::now() < self.0,
            "still waiting for {waiting_for} after {PATIENCE:?}"
        );
    }
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn ordered_move_delivers_old_part_first(pool: PgPool) {
    let router = router(&pool);
    let _clusters = shards(&router, 2).await;
    let q = spread(&router, "o", &ordered_attributes(), &["s1"]).await;
    let msg = |i: usize| NewMessage {
        group: Some("g".into()),
        ..NewMessage::new(format!("{i}"))
    };
    q.send_batch(&[msg(0), msg(1)]).await.unwrap();
    router.place("o", &["s2"]).await.unwrap();
    let q = router.open("o").await.unwrap();
    let late = q.send_batch(&[msg(2)]).await.unwrap();
    assert_eq!(late[0].shard, 2, "new sends go to the new shard");
    let mut order = Vec::new();
    let deadline = Deadline::start();
    while order.len() < 3 {
        deadline.check("the three messages");
        let got = q.receive(10, LOCK).await.unwrap();
        for m in &got {
            order.push(m.body.clone());
            q.delete(&m.receipt).await.unwrap();
        }
        if got.is_empty() {
            // s1 is empty but not yet retired: s2 waits until it is.
            router.settle().await.unwrap();
            tokio::time::sleep(TTL).await;
        }
    }
    assert_eq!(order, ["0", "1", "2"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn move_under_load_loses_and_duplicates_nothing(pool: PgPool) {
    let mover = router(&pool);
    let _clusters = shards(&mover, 2).await;
    spread(&mover, "busy", &Default::default(), &["s1"]).await;
    const TOTAL: usize = 3000;
    let sent = Arc::new(AtomicUsize::new(0));
    let done_sending = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Mutex::new(Vec::<String>::new()));

    // Producer and consumers each have a router of their own, whose routes
    // go stale on their own schedule.
    let producer = tokio::spawn({
        let q = router(&pool).open("busy").await.unwrap();
        let (sent, done) = (sent.clone(), done_sending.clone());
        async move {
            let mut refs: Vec<MessageRef> = Vec::new();
            for b in 0..TOTAL / 10 {
                let batch: Vec<_> = (0..10)
                    .map(|i| NewMessage::new(format!("m{}", b * 10 + i)))
                    .collect();
                refs.extend(q.send_batch(&batch).await.unwrap());
                sent.fetch_add(10, Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
            refs
        }
    });
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (received, done) = (received.clone(), done_sending.clone());
            let pool = pool.clone();
            tokio::spawn(async move {
                let q = router(&pool).open("busy").await.unwrap();
                let deadline = Deadline::start();
                loop {
                    deadline.check("every message to be received");
                    let got = q
                        .receive_wait(10, LOCK, Duration::from_millis(100))
                        .await
                        .unwrap();
                    if got.is_empty() && done.load(Ordering::Relaxed) {
                        if received.lock().unwrap().len() >= TOTAL {
                            return;
                        }
                        continue;
                    }
                    let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
                    let outcome = q.delete_batch(&receipts).await.unwrap();
                    assert!(outcome.stale.is_empty(), "no lease ran out");
                    received
                        .lock()
                        .unwrap()
                        .extend(got.into_iter().map(|m| m.body));
                }
            })
        })
        .collect();

    let deadline = Deadline::start();
    while sent.load(Ordering::Relaxed) < TOTAL / 3 {
        deadline.check("a third of the sends");
        tokio::task::yield_now().await;
    }
    mover.place("busy", &["s2"]).await.unwrap();
    let moved_at = sent.load(Ordering::Relaxed);
    let deadline = Deadline::start();
    let retired = loop {
        deadline.check("s1 to retire");
        let r = mover.settle().await.unwrap();
        if !r.is_empty() {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(retired, [("busy".to_owned(), "s1".to_owned())]);

    let refs = producer.await.unwrap();
    for c in consumers {
        c.await.unwrap();
    }
    assert!(moved_at < TOTAL, "the move happened while sending");
    let received = received.lock().unwrap();
    let distinct: HashSet<&String> = received.iter().collect();
    assert_eq!(received.len(), TOTAL, "nothing delivered twice");
    assert_eq!(distinct.len(), TOTAL, "nothing lost");
    assert_eq!(refs.last().unwrap().shard, 2, "the last sends went to s2");
    assert!(refs.iter().any(|r| r.shard == 1));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn down_shard_does_not_stop_the_others_and_loses_nothing(pool: PgPool) {
    let router = router(&pool);
    let clusters = shards(&router, 3).await;
    let q = spread(&router, "sturdy", &Default::default(), &["s1", "s2", "s3"]).await;
    for i in 0..30 {
        q.send(format!("before-{i}")).await.unwrap();
    }
    clusters[2].halt();
    for i in 0..30 {
        let r = q.send(format!("during-{i}")).await.unwrap();
        assert_ne!(r.shard, 3, "sends skip the down shard");
    }
    // The other shards' messages keep flowing.
    let got = receive_all(&q, 50, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 50);
    assert!(matches!(q.stats().await, Err(Error::ShardUnavailable(_))));
    let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
    q.delete_batch(&receipts).await.unwrap();

    clusters[2].resume();
    let rest = receive_all(&q, 10, Duration::from_secs(30)).await;
    let bodies: HashSet<_> = rest.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(rest.len(), 10, "the down shard's messages came back");
    assert!(bodies.iter().all(|b| b.starts_with("before-")));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn stats_rewind_and_redrive_work_across_shards(pool: PgPool) {
    let router = router(&pool);
    let _clusters = shards(&router, 2).await;
    router
        .control()
        .put("dead", &QueueAttributes::default())
        .await
        .unwrap();
    let attrs = dead_lettering(QueueAttributes::default(), "dead", 1);
    let q = spread(&router, "live", &attrs, &["s1", "s2"]).await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    for i in 0..10 {
        q.send(format!("m{i}")).await.unwrap();
    }
    assert_eq!(q.stats().await.unwrap().visible, 10);

    // Received once and let go: the next receive dead-letters each one,
    // on its own shard.
    for m in receive_all(&q, 10, Duration::from_secs(10)).await {
        q.change_visibility(&m.receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(q.receive(10, LOCK).await.unwrap().is_empty());
    assert_eq!(q.stats().await.unwrap().dead_lettered, 10);
    assert_eq!(q.redrive().await.unwrap(), 10);

    let got = receive_all(&q, 10, Duration::from_secs(10)).await;
    let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
    assert_eq!(q.delete_batch(&receipts).await.unwrap().deleted.len(), 10);
    assert_eq!(q.rewind(RewindTo::Time(start)).await.unwrap(), 10);
    assert!(matches!(
        q.rewind(RewindTo::Id(1)).await,
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(q.stats().await.unwrap().visible, 10);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn late_message_on_a_retired_part_is_drained_again(pool: PgPool) {
    let router = router(&pool);
    let clusters = shards(&router, 2).await;
    let q = spread(&router, "late", &Default::default(), &["s1"]).await;
    router.place("late", &["s2"]).await.unwrap();
    let deadline = Deadline::start();
    while router.settle().await.unwrap().is_empty() {
        deadline.check("s1 to retire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A sender that stalled past the retire delay still reaches s1.
    let s1 = Queues::new(PgPool::connect(&clusters[0].url()).await.unwrap());
    s1.open("late").await.unwrap().send("late").await.unwrap();
    assert!(
        q.receive(10, LOCK).await.unwrap().is_empty(),
        "s1 is retired"
    );

    router.settle().await.unwrap();
    let got = receive_all(&q, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "late");
    assert_eq!(got[0].receipt.shard(), 1);
}
