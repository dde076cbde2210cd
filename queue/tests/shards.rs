//! One queue over several Postgres clusters: placement, spread sends and
//! receives, ordered groups, long polling. The control database is the
//! test's fresh database; the shards are private clusters the test starts
//! (initdb / pg_ctl of the installed server).

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::routing::{receive_all, router, shards, spread, woken_only_router};
use common::{LOCK, WAKE_BOUND, await_listeners, bodies, listeners, ordered_attributes};
use queue::{Error, NewMessage, QueueAttributes};
use sqlx::PgPool;

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
        *per_shard
            .entry(q.send(format!("m{i}")).await.unwrap().shard)
            .or_default() += 1;
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
    let q = spread(
        &router,
        "albums",
        &ordered_attributes(),
        &["s1", "s2", "s3"],
    )
    .await;
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
            seen.entry(group.into())
                .or_default()
                .push(i.parse().unwrap());
            received += 1;
        }
        q.delete_batch(&receipts).await.unwrap();
    }
    assert!(seen.values().all(|v| *v == vec![0, 1, 2, 3, 4]), "{seen:?}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn long_poll_on_a_spread_queue_wakes_on_a_send_to_any_shard(pool: PgPool) {
    let router = router(&pool);
    let clusters = shards(&router, 2).await;
    spread(&router, "waiting", &Default::default(), &["s1", "s2"]).await;
    let ids: HashMap<String, i32> = router
        .shards()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect();
    for (name, cluster) in ["s1", "s2"].into_iter().zip(&clusters) {
        let shard = sqlx::PgPool::connect(&cluster.url()).await.unwrap();
        // A receiver of its own each time, so that its listeners coming up
        // say it waits; with no fallback poll only a NOTIFY from the shard
        // the send lands on can wake it.
        let before = listeners(&shard).await;
        let waiting = woken_only_router(&pool).open("waiting").await.unwrap();
        let receiver = tokio::spawn(async move {
            let start = std::time::Instant::now();
            let got = waiting.receive_wait(1, LOCK, Duration::from_secs(20)).await;
            (got, start.elapsed())
        });
        await_listeners(&shard, before + 1).await;
        // The sender is another process: a router of its own, sending to
        // this shard alone.
        let sender = common::routing::router(&pool)
            .open("waiting")
            .await
            .unwrap();
        let part = sender.sends_on(ids[name]).await.unwrap().unwrap();
        part.send(format!("to {name}")).await.unwrap();
        let (got, waited) = receiver.await.unwrap();
        let got = got.unwrap();
        assert_eq!(bodies(&got), [format!("to {name}")]);
        assert!(waited < WAKE_BOUND, "woke after {waited:?} on {name}");
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
    assert!(
        err.to_string().contains("no shard named `nowhere`"),
        "{err}"
    );
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
    assert!(
        err.to_string().contains("ordered queue holding messages"),
        "{err}"
    );
    // A move to shards it is not on is fine.
    router.place("o", &["s2"]).await.unwrap();
    let again = router.add_shard("s1", "postgres://elsewhere/x").await;
    assert!(again.is_err());
}
