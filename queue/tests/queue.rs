//! Queue behaviour against a real Postgres (one fresh database per test).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{
    LOCK, batch, bodies, consume, delayed, expire_leases, queue, queue_with, receipts,
    single_connection,
};
use queue::{Error, Message, NewMessage, Queue, QueueAttributes, Queues};
use sqlx::PgPool;

/// A new queue `name` with one message, received once under a lease that
/// has since expired.
async fn expired_lease(pool: &PgPool, name: &str) -> (Queue, Message) {
    let q = queue(pool, name).await;
    q.send("x").await.unwrap();
    let first = q.receive(1, LOCK).await.unwrap().remove(0);
    expire_leases(pool).await;
    (q, first)
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn sent_message_is_received_then_deleted(pool: PgPool) {
    let q = queue(&pool, "jobs").await;
    let id = q.send("hello").await.unwrap();
    let got = q.receive(10, LOCK).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].body, "hello");
    assert_eq!(got[0].receive_count, 1);
    q.delete(&got[0].receipt).await.unwrap();
    expire_leases(&pool).await;
    assert!(q.receive(10, LOCK).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn batch_send_returns_increasing_ids_in_order(pool: PgPool) {
    let q = queue(&pool, "batch").await;
    let ids = q.send_batch(&batch(100)).await.unwrap();
    assert_eq!(ids.len(), 100);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let got = q.receive(1000, LOCK).await.unwrap();
    let expected: Vec<_> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies(&got), expected);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn locked_message_is_invisible_to_other_receivers(pool: PgPool) {
    let q = queue(&pool, "locks").await;
    q.send("only").await.unwrap();
    assert_eq!(q.receive(1, LOCK).await.unwrap().len(), 1);
    assert!(q.receive(1, LOCK).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn expired_lock_redelivers_with_new_receipt(pool: PgPool) {
    let (q, first) = expired_lease(&pool, "expiry").await;
    let second = q.receive(1, LOCK).await.unwrap().remove(0);
    assert_eq!(first.id, second.id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(first.receipt, second.receipt);
    assert_eq!(first.first_received_at, second.first_received_at);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn stale_receipt_cannot_delete_redelivered_message(pool: PgPool) {
    let (q, first) = expired_lease(&pool, "stale").await;
    let second = q.receive(1, LOCK).await.unwrap().remove(0);
    assert!(matches!(
        q.delete(&first.receipt).await,
        Err(Error::StaleReceipt)
    ));
    assert!(matches!(
        q.change_visibility(&first.receipt, LOCK).await,
        Err(Error::StaleReceipt)
    ));
    // The current holder is unaffected.
    q.delete(&second.receipt).await.unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn expired_receipt_is_stale_even_before_redelivery(pool: PgPool) {
    let (q, m) = expired_lease(&pool, "expired").await;
    assert!(matches!(
        q.delete(&m.receipt).await,
        Err(Error::StaleReceipt)
    ));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn batch_delete_reports_stale_receipts(pool: PgPool) {
    let q = queue(&pool, "mixed").await;
    q.send_batch(&batch(2)).await.unwrap();
    let old = q.receive(2, LOCK).await.unwrap();
    expire_leases(&pool).await;
    let new = q.receive(1, LOCK).await.unwrap().remove(0);
    let other = old.iter().find(|m| m.id != new.id).unwrap();
    // `other` expired but nobody took it; `old` receipt of `new` is superseded.
    let stale_one = old.iter().find(|m| m.id == new.id).unwrap();
    let outcome = q
        .delete_batch(&[new.receipt, stale_one.receipt, other.receipt])
        .await
        .unwrap();
    assert_eq!(outcome.deleted, vec![new.receipt]);
    assert_eq!(outcome.stale, vec![stale_one.receipt, other.receipt]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn released_message_is_visible_again_at_once(pool: PgPool) {
    let q = queue(&pool, "release").await;
    q.send("x").await.unwrap();
    let m = q.receive(1, LOCK).await.unwrap().remove(0);
    q.change_visibility(&m.receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = q.receive(1, LOCK).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn delayed_message_is_not_received_before_its_delay(pool: PgPool) {
    let q = queue(&pool, "delayed").await;
    q.send_batch(&[delayed("later", Duration::from_secs(600))])
        .await
        .unwrap();
    assert!(q.receive(1, LOCK).await.unwrap().is_empty());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.delayed, stats.in_flight), (0, 1, 0));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn oversized_message_is_rejected(pool: PgPool) {
    let attrs = QueueAttributes {
        max_message_bytes: 10,
        ..Default::default()
    };
    let q = queue_with(&pool, "small", &attrs).await;
    assert!(matches!(
        q.send("x".repeat(11)).await,
        Err(Error::MessageTooLarge {
            size: 11,
            limit: 10
        })
    ));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn unknown_queue_is_not_found(pool: PgPool) {
    assert!(matches!(
        Queues::new(pool).open("nope").await,
        Err(Error::QueueNotFound(name)) if name == "nope"
    ));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn racing_receivers_never_share_a_message(pool: PgPool) {
    let q = queue(&pool, "race").await;
    q.send_batch(&batch(400)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = q.receive(7, LOCK).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|m| m.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.unwrap() {
            total += 1;
            assert!(
                seen.insert(id),
                "message {id} delivered twice under a live lock"
            );
        }
    }
    assert_eq!(total, 400);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn message_sent_in_rolled_back_transaction_is_never_delivered(pool: PgPool) {
    let q = queue(&pool, "tx").await;
    let mut tx = pool.begin().await.unwrap();
    q.send_batch_in(&mut tx, &[NewMessage::new("ghost")])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(q.receive(10, LOCK).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn reply_and_acknowledgement_in_one_transaction_stand_or_fall_together(pool: PgPool) {
    let (requests, replies) = (
        queue(&pool, "requests").await,
        queue(&pool, "replies").await,
    );
    requests.send("work").await.unwrap();
    let got = requests.receive(1, LOCK).await.unwrap();
    let reply = [NewMessage::new("result")];
    let mut tx = pool.begin().await.unwrap();
    replies.send_batch_in(&mut tx, &reply).await.unwrap();
    let outcome = requests
        .delete_batch_in(&mut tx, &receipts(&got))
        .await
        .unwrap();
    assert_eq!(outcome.deleted, receipts(&got));
    tx.rollback().await.unwrap();
    // Neither happened: no reply, and the request is still leased to us.
    assert!(replies.receive(10, LOCK).await.unwrap().is_empty());
    assert_eq!(requests.stats().await.unwrap().in_flight, 1);
    let mut tx = pool.begin().await.unwrap();
    replies.send_batch_in(&mut tx, &reply).await.unwrap();
    requests
        .delete_batch_in(&mut tx, &receipts(&got))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Both happened.
    assert_eq!(
        bodies(&replies.receive(10, LOCK).await.unwrap()),
        ["result"]
    );
    let stats = requests.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 0));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn purge_empties_the_queue(pool: PgPool) {
    let q = queue(&pool, "p").await;
    q.send_batch(&batch(2)).await.unwrap();
    q.receive(1, LOCK).await.unwrap();
    assert_eq!(q.purge().await.unwrap(), 2);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 0));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn put_updates_existing_queue(pool: PgPool) {
    let queues = Queues::new(pool);
    let (_, first) = queues.put("q", &QueueAttributes::default()).await.unwrap();
    let attrs = QueueAttributes {
        visibility_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let (_, second) = queues.put("q", &attrs).await.unwrap();
    assert_eq!(first, queue::Put::Created);
    assert_eq!(second, queue::Put::Updated);
    assert_eq!(
        queues
            .open("q")
            .await
            .unwrap()
            .attributes()
            .visibility_timeout,
        Duration::from_secs(5)
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn hot_statements_keep_one_generic_plan(pool: PgPool) {
    // One connection, so every statement's plan cache is the one inspected.
    let one = single_connection(&pool).await;
    let q = queue(&one, "plans").await;
    for size in [1, 3, 100, 7, 50, 1, 100, 2, 30, 100, 1, 64] {
        q.send_batch(&batch(size)).await.unwrap();
        assert_eq!(consume(&q, size).await.len(), size);
    }
    // Postgres plans a prepared statement's first five runs for their
    // values and then keeps to the generic plan unless those came out
    // cheaper; a statement that plans every call pays more for planning
    // than for running.
    let replanned: Vec<(String, i64)> = sqlx::query_as(
        "select left(statement, 60), custom_plans from pg_prepared_statements
         where statement ~ 'queue_(messages|chunks)' and custom_plans > 5",
    )
    .fetch_all(&one)
    .await
    .unwrap();
    assert!(replanned.is_empty(), "planned per call: {replanned:?}");
}
