//! Group commit: small sends, receives and deletes made at the same time
//! through one handle share a statement, and each call still gets exactly
//! its own answer. The futures are polled together (`join_all`), so every
//! call is waiting before the first statement of its kind finishes.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{LOCK, batch, exec, expire_leases, ids, queue, receive_bodies};
use futures::future::join_all;
use queue::{Error, NewMessage, Queue, QueueAttributes, Receipt};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

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
    let sent = join_all(clones.iter().map(|c| c.send("m"))).await;
    let sent: Vec<i64> = sent.into_iter().map(Result::unwrap).collect();
    assert_eq!(sent, (sent[0]..sent[0] + 8).collect::<Vec<_>>());
    assert_eq!(live_rows(&pool).await, 1);
}

/// Sends each message in a statement (and a live row) of its own.
async fn send_apart(q: &Queue, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(q.send(format!("m{i}")).await.unwrap());
    }
    ids
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_delete_and_a_receive_made_at_once_share_one_statement(pool: PgPool) {
    let q = queue(&pool, "mixed").await;
    send_apart(&q, 3).await;
    let first = q.receive(1, LOCK).await.unwrap();
    // From here on, leasing a message fails. Had the delete a statement of
    // its own, it would succeed; sharing the receive's, it fails with it.
    exec(
        &pool,
        "alter table queue_messages add constraint refuse check (receive_count < 1) not valid",
    )
    .await;
    let (deleted, received) = futures::join!(q.delete(&first[0].receipt), q.receive(1, LOCK));
    for e in [deleted.unwrap_err(), received.unwrap_err()] {
        assert!(e.to_string().contains("refuse"), "{e}");
    }
    // Nothing of it took effect: the lease still holds and deletes.
    exec(&pool, "alter table queue_messages drop constraint refuse").await;
    q.delete(&first[0].receipt).await.unwrap();
    assert_eq!(live_rows(&pool).await, 2);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn deletes_and_receives_in_one_statement_each_get_their_own_answer(pool: PgPool) {
    let q = queue(&pool, "answers").await;
    let sent = send_apart(&q, 6).await;
    let first = q.receive(1, LOCK).await.unwrap();
    let second = q.receive(1, LOCK).await.unwrap();
    expire_leases(&pool).await;
    let again = q.receive(1, LOCK).await.unwrap();
    assert_eq!(again[0].id, sent[0]);
    // A current receipt, a stale one and a receive of two, at once.
    let (current, stale, got, one) = futures::join!(
        q.delete(&again[0].receipt),
        q.delete(&first[0].receipt),
        q.receive(2, LOCK),
        q.receive(1, LOCK)
    );
    current.unwrap();
    assert!(matches!(stale, Err(Error::StaleReceipt)), "{stale:?}");
    // The oldest visible go to the receive that came first: the second
    // message's lease expired, so it is visible again.
    let got = got.unwrap();
    assert_eq!(ids(&got), [sent[1], sent[2]]);
    assert_eq!(ids(&one.unwrap()), [sent[3]]);
    assert_ne!(lease(&got[0].receipt), lease(&second[0].receipt));
    for m in got {
        q.delete(&m.receipt).await.unwrap();
    }
    assert!(matches!(
        q.delete(&second[0].receipt).await,
        Err(Error::StaleReceipt)
    ));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn on_an_ordered_queue_a_receive_made_with_a_delete_sees_it_done(pool: PgPool) {
    let q = common::ordered(&pool).await;
    let sent = q
        .send_batch(&[common::in_group("a1", "a"), common::in_group("a2", "a")])
        .await
        .unwrap();
    let head = q.receive(1, LOCK).await.unwrap();
    // The group's next message is held back while its head is leased; a
    // receive made together with the head's delete runs after it.
    let (deleted, next) = futures::join!(q.delete(&head[0].receipt), q.receive(1, LOCK));
    deleted.unwrap();
    assert_eq!(ids(&next.unwrap()), [sent[1]]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_busy_runner_keeps_its_connection_between_statements(
    options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // sqlx pings every connection that goes back to its pool, a round trip
    // of its own: a runner that gave its connection back after each group
    // would pay one per statement.
    let releases = Arc::new(AtomicUsize::new(0));
    let counted = releases.clone();
    let pool = options
        .after_release(move |_, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(true) })
        })
        .connect_with(connect)
        .await
        .unwrap();
    let q = queue(&pool, "held").await;
    // Sends also wake long pollers, with NOTIFYs of their own on pooled
    // connections: each is one statement, one connection back and one
    // notification heard here, however fast or slow the machine.
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen("darkroom_queue").await.unwrap();
    releases.store(0, Ordering::Relaxed);
    // Four producers, then four consumers, one message a call: at least 25
    // statements each.
    join_all((0..4).map(|_| async {
        for _ in 0..25 {
            q.send("m").await.unwrap();
        }
    }))
    .await;
    let sends = releases.swap(0, Ordering::Relaxed);
    // A NOTIFY follows the last send within 5 ms: a quiet second means
    // every one has been heard.
    let mut notifies = 0;
    while let Ok(n) = tokio::time::timeout(std::time::Duration::from_secs(1), listener.recv()).await
    {
        n.unwrap();
        notifies += 1;
    }
    join_all((0..4).map(|_| async {
        for _ in 0..25 {
            let got = q.receive(1, LOCK).await.unwrap();
            q.delete(&got[0].receipt).await.unwrap();
        }
    }))
    .await;
    let consumes = releases.load(Ordering::Relaxed);
    assert!(
        sends <= notifies + 2,
        "{sends} connections went back while sending, {notifies} of them NOTIFYs"
    );
    assert!(
        consumes < 10,
        "{consumes} connections went back while consuming"
    );
    assert_eq!(live_rows(&pool).await, 0);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_busy_runner_shares_a_pool_with_no_connection_to_spare(
    options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = options
        .max_connections(1)
        .connect_with(connect)
        .await
        .unwrap();
    let busy = queue(&pool, "busy").await;
    let other = queue(&pool, "other").await;
    let done = AtomicBool::new(false);
    // Two producers keep the busy queue's runner going until the other
    // queue's send is through; kept past a bound, they would have held
    // the pool's one connection all along.
    let producers = join_all((0..2).map(|_| async {
        let mut sent = 0;
        while !done.load(Ordering::Relaxed) && sent < 2_000 {
            busy.send("m").await.unwrap();
            sent += 1;
        }
        sent
    }));
    let lone = async {
        other.send("lone").await.unwrap();
        done.store(true, Ordering::Relaxed);
    };
    let (sent, ()) = futures::join!(producers, lone);
    assert!(sent.iter().all(|&n| n < 2_000), "{sent:?}");
    assert_eq!(receive_bodies(&other, 10).await, ["lone"]);
}
