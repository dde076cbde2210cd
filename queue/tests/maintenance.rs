//! What queue maintenance does by itself: retention (old live messages
//! deleted, or moved to the dead letter queue where there is one), old
//! bodies dropped a partition at a time, and vacuuming the tables that
//! churn. Against a real Postgres (one fresh database per test).

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{
    LOCK, apply_retention, backdate, backdate_first_message, bodies, consume, dead_lettering, exec,
    queue, queue_with, receive_bodies, redrive,
};
use queue::{DeadLetterReason, Maintenance, QueueAttributes};
use sqlx::PgPool;

/// The default attributes but for the retention of live messages.
fn retention(retention: Option<Duration>) -> QueueAttributes {
    QueueAttributes {
        retention,
        ..Default::default()
    }
}

const MINUTE: Option<Duration> = Some(Duration::from_secs(60));

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn retention_expires_old_undeleted_messages(pool: PgPool) {
    let q = queue_with(&pool, "short", &retention(MINUTE)).await;
    q.send("stale").await.unwrap();
    q.send("fresh").await.unwrap();
    backdate_first_message(&pool, "2 minutes").await;
    assert_eq!(apply_retention(&pool).await, (1, 0));
    assert_eq!(receive_bodies(&q, 10).await, ["fresh"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn queue_without_retention_keeps_old_messages(pool: PgPool) {
    let q = queue_with(&pool, "keep", &retention(None)).await;
    q.send("old").await.unwrap();
    backdate(&pool, "queue_messages", "400 days").await;
    assert_eq!(apply_retention(&pool).await, (0, 0));
    assert_eq!(receive_bodies(&q, 10).await, ["old"]);
    assert_eq!(q.attributes().retention, None);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn expired_messages_of_a_queue_with_a_dead_letter_queue_move_there(pool: PgPool) {
    let dead = queue_with(&pool, "work.dead", &retention(None)).await;
    let attrs = dead_lettering(retention(MINUTE), "work.dead", 3);
    let q = queue_with(&pool, "work", &attrs).await;
    q.send("stale").await.unwrap();
    q.send("fresh").await.unwrap();
    backdate_first_message(&pool, "2 minutes").await;
    // Queues with a dead letter queue are not the delete's to expire: none
    // is deleted, the stale one is moved.
    assert_eq!(apply_retention(&pool).await, (0, 1));
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.dead_lettered), (1, 1), "{stats:?}");
    let got = dead.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&got), ["stale"]);
    assert_eq!(got[0].dead_letter_reason, Some(DeadLetterReason::Expired));
    assert_eq!(dead.stats().await.unwrap().in_flight, 1);
    // Redriven, it is an ordinary message again.
    let back = redrive(&q, &dead, &got[0]).await;
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|m| m.dead_letter_reason.is_none()));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn expired_bodies_are_dropped_a_partition_at_a_time(pool: PgPool) {
    let attrs = QueueAttributes {
        rewind_window: Duration::from_secs(60),
        ..retention(MINUTE)
    };
    let q = queue_with(&pool, "churn", &attrs).await;
    q.send("gone").await.unwrap();
    assert_eq!(bodies(&consume(&q, 1).await), ["gone"]);
    let partitions = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_inherits where inhparent = 'queue_chunks'::regclass",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = partitions().await;
    let maintenance = Maintenance::new(pool.clone());
    // Nothing is old enough yet.
    assert_eq!(maintenance.drop_expired_bodies().await.unwrap(), 0);
    // Move the id sequence past the first partition and age its bodies.
    exec(&pool, "select setval('queue_message_ids', 10000000000)").await;
    maintenance.ensure_partitions().await.unwrap();
    backdate(&pool, "queue_chunks", "1 hour").await;
    assert_eq!(maintenance.drop_expired_bodies().await.unwrap(), 1);
    assert_eq!(partitions().await, before);
    // Sending still works in the new partition.
    q.send("after").await.unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn maintenance_vacuums_the_churning_tables_itself(pool: PgPool) {
    let q = queue(&pool, "churn").await;
    // 1500 single-message rows, received and deleted: 1500 dead rows.
    for _ in 0..1500 {
        q.send("x").await.unwrap();
    }
    while !consume(&q, 1000).await.is_empty() {}
    // Dead rows reach the statistics within a second or so; poll for them.
    let maintenance = Maintenance::new(pool.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut vacuumed = 0;
    while vacuumed == 0 && Instant::now() < deadline {
        vacuumed = maintenance.vacuum().await.unwrap();
        if vacuumed == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(vacuumed >= 1, "no vacuum although 1500 rows died");
    let last: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "select last_vacuum from pg_stat_user_tables where relname = 'queue_messages'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(last.is_some());
}
