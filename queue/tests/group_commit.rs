//! Group commit: small sends, receives and deletes made at the same time
//! through one handle share a statement, and each call still gets exactly
//! its own answer. The futures are polled together (`join_all`), so every
//! call is waiting before the first statement of its kind finishes.

mod common;

use std::collections::HashSet;

use common::{LOCK, batch, exec, expire_leases, ids, queue};
use futures::future::join_all;
use queue::{Error, NewMessage, Queue, QueueAttributes, Receipt};
use sqlx::PgPool;

async fn live_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from queue_messages")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The lease token of a receipt: the same for messages leased by one
/// statement.
fn lease(r: &Receipt) -> String {
    r.to_string().rsplit('.').next().unwrap().to_owned()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn concurrent_single_sends_share_one_statement(pool: PgPool) {
    let q = queue(&pool, "sends").await;
    let sent = join_all((0..16).map(|i| q.send(format!("m{i}")))).await;
    let sent: Vec<i64> = sent.into_iter().map(Result::unwrap).collect();
    assert_eq!(sent.iter().collect::<HashSet<_>>().len(), 16);
    // One statement made them: one live row, ids consecutive in call order.
    assert_eq!(live_rows(&pool).await, 1);
    assert_eq!(sent, (sent[0]..sent[0] + 16).collect::<Vec<_>>());
    let got = q.receive(100, LOCK).await.unwrap();
    assert_eq!(ids(&got), sent);
    assert_eq!(got[5].body, "m5");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_batch_too_large_for_the_queue_fails_alone(pool: PgPool) {
    let attrs = QueueAttributes {
        max_message_bytes: 1024,
        ..Default::default()
    };
    let q = common::queue_with(&pool, "limits", &attrs).await;
    let big = [NewMessage::new("x".repeat(2000))];
    let small = [NewMessage::new("fits")];
    let (a, b, c) = futures::join!(
        q.send_batch(&small),
        q.send_batch(&big),
        q.send_batch(&small)
    );
    assert!(matches!(b, Err(Error::MessageTooLarge { .. })), "{b:?}");
    assert_eq!(a.unwrap().len() + c.unwrap().len(), 2);
    assert_eq!(q.receive(10, LOCK).await.unwrap().len(), 2);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn concurrent_single_receives_share_a_lease_and_each_gets_its_own_message(pool: PgPool) {
    let q = queue(&pool, "receives").await;
    let sent = q.send_batch(&batch(12)).await.unwrap();
    let got = join_all((0..10).map(|_| q.receive(1, LOCK))).await;
    let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
    assert!(got.iter().all(|m| m.len() == 1));
    // The oldest go to the calls that came first.
    let each: Vec<i64> = got.iter().map(|m| m[0].id).collect();
    assert_eq!(each, sent[..10]);
    let leases: HashSet<String> = got.iter().map(|m| lease(&m[0].receipt)).collect();
    assert_eq!(leases.len(), 1, "one statement leased them all");
    // Each deletes its own; the two never received stay.
    for m in &got {
        q.delete(&m[0].receipt).await.unwrap();
    }
    assert_eq!(ids(&q.receive(10, LOCK).await.unwrap()), sent[10..]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn calls_that_find_too_few_messages_come_back_empty(pool: PgPool) {
    let q = queue(&pool, "few").await;
    q.send_batch(&batch(2)).await.unwrap();
    let got = join_all((0..4).map(|_| q.receive(1, LOCK))).await;
    let sizes: Vec<usize> = got.into_iter().map(|m| m.unwrap().len()).collect();
    assert_eq!(sizes, [1, 1, 0, 0]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn receives_with_different_locks_lease_apart(pool: PgPool) {
    let q = queue(&pool, "locks").await;
    q.send_batch(&batch(4)).await.unwrap();
    let short = LOCK / 2;
    let got = join_all([LOCK, short, LOCK, short].map(|lock| q.receive(1, lock))).await;
    let leases: Vec<String> = got
        .iter()
        .map(|m| lease(&m.as_ref().unwrap()[0].receipt))
        .collect();
    assert_eq!(leases[0], leases[2]);
    assert_eq!(leases[1], leases[3]);
    assert_ne!(leases[0], leases[1]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_stale_receipt_in_a_group_of_deletes_fails_only_its_own_call(pool: PgPool) {
    let q = queue(&pool, "deletes").await;
    q.send_batch(&batch(3)).await.unwrap();
    let first = q.receive(3, LOCK).await.unwrap();
    expire_leases(&pool).await;
    let again = q.receive(3, LOCK).await.unwrap();
    // The first lease's receipt for the middle message is stale now.
    let (a, stale, c) = futures::join!(
        q.delete(&again[0].receipt),
        q.delete(&first[1].receipt),
        q.delete(&again[2].receipt)
    );
    a.unwrap();
    c.unwrap();
    assert!(matches!(stale, Err(Error::StaleReceipt)), "{stale:?}");
    q.delete(&again[1].receipt).await.unwrap();
    assert_eq!(live_rows(&pool).await, 0);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_failed_statement_fails_every_call_it_served(pool: PgPool) {
    let q = queue(&pool, "fails").await;
    // Sends fail from here on, for every call of the group alike.
    exec(
        &pool,
        "alter table queue_chunks add constraint refuse check (queue_id < 0)",
    )
    .await;
    let sent = join_all((0..4).map(|i| q.send(format!("m{i}")))).await;
    for r in sent {
        let e = r.unwrap_err();
        assert!(e.to_string().contains("refuse"), "{e}");
    }
    assert_eq!(live_rows(&pool).await, 0);
    // Nothing is left behind: the next calls run once the check is gone.
    exec(&pool, "alter table queue_chunks drop constraint refuse").await;
    let sent = join_all((0..4).map(|i| q.send(format!("m{i}")))).await;
    assert!(sent.iter().all(Result::is_ok));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn clones_of_a_handle_group_together(pool: PgPool) {
    let q = queue(&pool, "clones").await;
    let clones: Vec<Queue> = (0..8).map(|_| q.clone()).collect();
    join_all(clones.iter().map(|c| c.send("m"))).await;
    assert_eq!(live_rows(&pool).await, 1);
}
