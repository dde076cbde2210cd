//! One queue over several Postgres clusters: the control database is the
//! test's fresh database, the shards are private clusters this test starts
//! (initdb / pg_ctl of the installed server), one of which a test stops.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::Cluster;
use common::{LOCK, dead_lettering, ordered_attributes};
use queue::{
    Error, MessageRef, NewMessage, QueueAttributes, Queues, RewindTo, Routed, Router,
};
use sqlx::PgPool;

/// Short timings, so that moves settle within a test.
const TTL: Duration = Duration::from_millis(50);
const RETIRE_AFTER: Duration = Duration::from_millis(300);

fn router(pool: &PgPool) -> Router {
    Router::with_timing(Queues::new(pool.clone()), TTL, RETIRE_AFTER)
}

/// `n` clusters, listed as shards `s1`..`sn` of the control database.
async fn shards(router: &Router, n: usize) -> Vec<Cluster> {
    let clusters: Vec<Cluster> = (0..n).map(|_| Cluster::start()).collect();
    for (i, c) in clusters.iter().enumerate() {
        router
            .add_shard(&format!("s{}", i + 1), &c.url())
            .await
            .unwrap();
    }
    clusters
}

/// Creates `name` spread over `on`.
async fn spread(router: &Router, name: &str, attrs: &QueueAttributes, on: &[&str]) -> Routed {
    router.create_on(name, attrs, on).await.unwrap();
    router.open(name).await.unwrap()
}

/// Receives until `want` messages came or `patience` ran out.
async fn receive_all(q: &Routed, want: usize, patience: Duration) -> Vec<queue::Message> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut got = Vec::new();
    while got.len() < want && tokio::time::Instant::now() < deadline {
        if let Ok(m) = q.receive_wait(10, LOCK, Duration::from_millis(200)).await {
            got.extend(m);
        }
    }
    got
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn one_database_needs_no_placement(pool: PgPool) {
    let router = router(&pool);
    router
        .control()
        .put("plain", &QueueAttributes::default())
        .await
        .unwrap();
    let q = router.open("plain").await.unwrap();
    let sent = q.send("hello").await.unwrap();
    assert_eq!(sent.shard, 0);
    let got = q.receive(10, LOCK).await.unwrap();
    assert_eq!(got.len(), 1);
    // Receipts of the control database read as they always did.
    assert!(!got[0].receipt.to_string().contains(':'));
    q.delete(&got[0].receipt).await.unwrap();
    assert!(matches!(
        router.open("missing").await,
        Err(Error::QueueNotFound(_))
    ));
    let listed = router.shards().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "control");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn spread_queue_sends_round_robin_and_receives_from_every_shard(pool: PgPool) {
    let router = router(&pool);
    let _clusters = shards(&router, 3).await;
    let q = spread(&router, "wide", &Default::default(), &["s1", "s2", "s3"]).await;
    let mut per_shard: HashMap<i32, usize> = HashMap::new();
    for i in 0..30 {
        *per_shard.entry(q.send(format!("m{i}")).await.unwrap().shard).or_default() += 1;
    }
    assert_eq!(per_shard.len(), 3, "every shard took sends: {per_shard:?}");
    assert!(per_shard.values().all(|&n| n == 10), "{per_shard:?}");
    assert_eq!(q.stats().await.unwrap().visible, 30);

    let got = receive_all(&q, 30, Duration::from_secs(10)).await;
    let bodies: HashSet<_> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies.len(), 30);
    let receipt_shards: HashSet<i32> = got.iter().map(|m| m.receipt.shard()).collect();
    assert_eq!(receipt_shards, HashSet::from([1, 2, 3]));
    // Receipts survive their text form, as an HTTP client holds them.
    let receipts: Vec<_> = got
        .iter()
        .map(|m| m.receipt.to_string().parse().unwrap())
        .collect();
    let outcome = q.delete_batch(&receipts).await.unwrap();
    assert_eq!(outcome.deleted.len(), 30);
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.visible + stats.in_flight, 0);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn receives_draw_from_every_shard_in_turn(pool: PgPool) {
    let router = router(&pool);
    let _clusters = shards(&router, 3).await;
    let q = spread(&router, "fair", &Default::default(), &["s1", "s2", "s3"]).await;
    for i in 0..60 {
        q.send(format!("m{i}")).await.unwrap();
    }
    // One message per receive: each receive starts at the next shard.
    let mut first: HashMap<i32, usize> = HashMap::new();
    for _ in 0..30 {
        let m = q.receive(1, LOCK).await.unwrap();
        *first.entry(m[0].receipt.shard()).or_default() += 1;
    }
    assert!(first.values().all(|&n| n == 10), "{first:?}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn ordered_spread_keeps_each_group_on_one_shard_in_order(pool: PgPool) {
    let router = router(&pool);
    let _clusters = shards(&router, 3).await;
    let q = spread(&router, "albums", &ordered_attributes(), &["s1", "s2", "s3"]).await;
    let mut batch = Vec::new();
    for g in 0..12 {
        for i in 0..5 {
            batch.push(NewMessage {
                group: Some(format!("album-{g}")),
                ..NewMessage::new(format!("album-{g}/{i}"))
            });
        }
    }
    let refs = q.send_batch(&batch).await.unwrap();
    let mut shard_of_group: HashMap<String, HashSet<i32>> = HashMap::new();
    for (m, r) in batch.iter().zip(&refs) {
        shard_of_group
            .entry(m.group.clone().unwrap())
            .or_default()
            .insert(r.shard);
    }
    assert!(shard_of_group.values().all(|s| s.len() == 1));
    let used: HashSet<i32> = shard_of_group.values().flatten().copied().collect();
    assert!(used.len() > 1, "groups spread over shards");

    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    let mut received = 0;
    while received < batch.len() {
        let got = q.receive(10, LOCK).await.unwrap();
        assert!(!got.is_empty(), "a group's next message is visible");
        let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
        for m in got {
            let (group, i) = m.body.split_once('/').unwrap();
            seen.entry(group.into()).or_default().push(i.parse().unwrap());
            received += 1;
        }
        q.delete_batch(&receipts).await.unwrap();
    }
    assert!(seen.values().all(|v| *v == vec![0, 1, 2, 3, 4]), "{seen:?}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn long_poll_wakes_on_a_send_to_any_shard(pool: PgPool) {
    let router = router(&pool);
    let _clusters = shards(&router, 2).await;
    let q = spread(&router, "waiting", &Default::default(), &["s1", "s2"]).await;
    for _ in 0..2 {
        let receiver = tokio::spawn({
            let q = q.clone();
            async move { q.receive_wait(1, LOCK, Duration::from_secs(20)).await }
        });
        // The send lands on one shard or the other, by turn; either wakes it.
        let start = std::time::Instant::now();
        while !receiver.is_finished() {
            q.send("wake").await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let got = receiver.await.unwrap().unwrap();
        assert_eq!(got.len(), 1);
        assert!(start.elapsed() < Duration::from_secs(5));
        q.purge().await.unwrap();
    }
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn unknown_shards_and_overlapping_ordered_moves_are_refused(pool: PgPool) {
    let router = router(&pool);
    let _clusters = shards(&router, 2).await;
    router
        .control()
        .put("o", &ordered_attributes())
        .await
        .unwrap();
    let err = router.place("o", &["nowhere"]).await.unwrap_err();
    assert!(err.to_string().contains("no shard named `nowhere`"), "{err}");
    router.place("o", &["s1"]).await.unwrap();
    let q = router.open("o").await.unwrap();
    q.send_batch(&[NewMessage {
        group: Some("g".into()),
        ..NewMessage::new("held")
    }])
    .await
    .unwrap();
    // Spreading over s1 and s2 would send part of group g to s2 while
    // its older message waits on s1.
    let err = router.place("o", &["s1", "s2"]).await.unwrap_err();
    assert!(err.to_string().contains("ordered queue holding messages"), "{err}");
    // A move to shards it is not on is fine.
    router.place("o", &["s2"]).await.unwrap();
    let again = router.add_shard("s1", "postgres://elsewhere/x").await;
    assert!(again.is_err());
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
    while order.len() < 3 {
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
                loop {
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

    while sent.load(Ordering::Relaxed) < TOTAL / 3 {
        tokio::task::yield_now().await;
    }
    mover.place("busy", &["s2"]).await.unwrap();
    let moved_at = sent.load(Ordering::Relaxed);
    let retired = loop {
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
        q.change_visibility(&m.receipt, Duration::ZERO).await.unwrap();
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
    while router.settle().await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A sender that stalled past the retire delay still reaches s1.
    let s1 = Queues::new(PgPool::connect(&clusters[0].url()).await.unwrap());
    s1.open("late").await.unwrap().send("late").await.unwrap();
    assert!(q.receive(10, LOCK).await.unwrap().is_empty(), "s1 is retired");

    router.settle().await.unwrap();
    let got = receive_all(&q, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "late");
    assert_eq!(got[0].receipt.shard(), 1);
}
