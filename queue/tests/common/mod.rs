//! What the queue's test files share: queues made with given attributes,
//! time moved on (leases expired, messages aged) by rewriting rows instead
//! of sleeping, and the parts of received messages that tests compare.
//!
//! Each test file is a crate of its own and uses only some of these.

#![allow(dead_code)]

pub mod delivery;
pub mod routing;

use std::time::Duration;

use queue::{Maintenance, Message, NewMessage, Queue, QueueAttributes, QueueKind, Queues, Receipt};
use sqlx::PgPool;

/// The lock of every receive whose test is not about lock times: long
/// enough never to run out by itself.
pub const LOCK: Duration = Duration::from_secs(30);

/// A fallback poll far longer than any wait of a test: receives made with it
/// are woken by a NOTIFY or not at all, so that a broken NOTIFY fails a
/// wake-up test instead of passing for a slow one.
pub const NO_FALLBACK: Duration = Duration::from_secs(3600);

/// How soon a NOTIFY must wake a waiting receive: well inside the usual
/// fallback poll's 500 ms multiplied by a slow machine's margin, and far
/// inside [`NO_FALLBACK`] and the 20 s waits of the tests.
pub const WAKE_BOUND: Duration = Duration::from_secs(3);

/// The queues of the test's database, woken only by NOTIFY.
pub fn woken_only(pool: &PgPool) -> Queues {
    Queues::new(pool.clone()).with_fallback_poll(NO_FALLBACK)
}

/// The LISTEN connections open to the database `pool` reaches. Only that
/// database's backends count: other tests' listeners run on the same
/// server.
pub async fn listeners(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and query like 'LISTEN%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until the database `pool` reaches has `at_least` LISTEN
/// connections; panics past 10 s. A receive registers for wake-ups before
/// its `Queues`' listener starts, so once the listener is there the receive
/// is registered, and a NOTIFY now reaches it.
pub async fn await_listeners(pool: &PgPool, at_least: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while listeners(pool).await < at_least {
        assert!(
            std::time::Instant::now() < deadline,
            "no receive started listening within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs one statement behind the queue's back.
pub async fn exec(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// A pool of one connection of its own to the test's database: one
/// backend, whose state (plan cache, pid) a test can inspect or end.
pub async fn single_connection(pool: &PgPool) -> PgPool {
    let options = pool.connect_options().as_ref().clone();
    let one = sqlx::postgres::PgPoolOptions::new().max_connections(1);
    one.connect_with(options).await.unwrap()
}

/// Creates (or updates) the queue `name` with `attrs`.
pub async fn queue_with(pool: &PgPool, name: &str, attrs: &QueueAttributes) -> Queue {
    Queues::new(pool.clone()).put(name, attrs).await.unwrap().0
}

/// Creates the queue `name` with the default attributes.
pub async fn queue(pool: &PgPool, name: &str) -> Queue {
    queue_with(pool, name, &QueueAttributes::default()).await
}

/// The default attributes but for an ordered queue.
pub fn ordered_attributes() -> QueueAttributes {
    QueueAttributes {
        kind: QueueKind::Ordered,
        ..Default::default()
    }
}

/// An ordered queue named `ordered`.
pub async fn ordered(pool: &PgPool) -> Queue {
    queue_with(pool, "ordered", &ordered_attributes()).await
}

/// `attrs` plus: a message received `max` times goes to `dead_letter_queue`.
pub fn dead_lettering(
    attrs: QueueAttributes,
    dead_letter_queue: &str,
    max: u32,
) -> QueueAttributes {
    QueueAttributes {
        max_receive_count: Some(max),
        dead_letter_queue: Some(dead_letter_queue.into()),
        ..attrs
    }
}

/// The queue `work`, whose messages move to the queue `work.dead` after
/// `max` receives.
pub async fn with_dead_letters(pool: &PgPool, max: u32) -> (Queues, Queue) {
    let queues = Queues::new(pool.clone());
    queues
        .put("work.dead", &QueueAttributes::default())
        .await
        .unwrap();
    let attrs = dead_lettering(QueueAttributes::default(), "work.dead", max);
    let (q, _) = queues.put("work", &attrs).await.unwrap();
    (queues, q)
}

/// A message of the ordered group `group`.
pub fn in_group(body: &str, group: &str) -> NewMessage {
    NewMessage {
        body: body.into(),
        delay: None,
        group: Some(group.into()),
    }
}

/// A message that becomes visible only after `delay`.
pub fn delayed(body: &str, delay: Duration) -> NewMessage {
    NewMessage {
        body: body.into(),
        delay: Some(delay),
        group: None,
    }
}

/// `n` messages with the bodies `m0`, `m1`, ...
pub fn batch(n: usize) -> Vec<NewMessage> {
    (0..n).map(|i| NewMessage::new(format!("m{i}"))).collect()
}

/// Makes every live lease expire, instead of sleeping through it.
pub async fn expire_leases(pool: &PgPool) {
    // Stats see lock expiry by the clock alone; moved back in time like
    // this, their counters must be told.
    let expired = "visible_at = now() - interval '1 second' where lease is not null";
    exec(pool, &format!("update queue_messages set {expired}")).await;
    exec(pool, "update queue_counters set leased = 0").await;
}

/// Pretends every row of `table` (`queue_messages` for the live messages,
/// `queue_chunks` for the bodies) was enqueued `ago`, an SQL interval.
pub async fn backdate(pool: &PgPool, table: &str, ago: &str) {
    let sql = format!("update {table} set enqueued_at = now() - interval '{ago}'");
    exec(pool, &sql).await;
}

/// Pretends the first message sent of all was enqueued `ago`.
pub async fn backdate_first_message(pool: &PgPool, ago: &str) {
    let first = "id = (select min(id) from queue_messages)";
    let sql =
        format!("update queue_messages set enqueued_at = now() - interval '{ago}' where {first}");
    exec(pool, &sql).await;
}

/// One round of retention, as maintenance runs it: how many live messages
/// past their retention it deleted, and how many it moved to dead letter
/// queues.
pub async fn apply_retention(pool: &PgPool) -> (u64, u64) {
    let maintenance = Maintenance::new(pool.clone());
    let expired = maintenance.expire_messages(1000).await.unwrap();
    let dead_lettered = maintenance.dead_letter_expired(1000).await.unwrap();
    (expired, dead_lettered)
}

pub fn ids(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

pub fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

pub fn receipts(messages: &[Message]) -> Vec<Receipt> {
    messages.iter().map(|m| m.receipt).collect()
}

/// Releases `letter`, received from the dead letter queue of `q`, and
/// redrives it to `q`: returns what `q` delivers then.
pub async fn redrive(q: &Queue, dead: &Queue, letter: &Message) -> Vec<Message> {
    dead.change_visibility(&letter.receipt, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(q.redrive().await.unwrap(), 1);
    q.receive(10, LOCK).await.unwrap()
}

/// Receives up to `max` messages and returns their bodies.
pub async fn receive_bodies(q: &Queue, max: usize) -> Vec<String> {
    let got = q.receive(max, LOCK).await.unwrap();
    got.into_iter().map(|m| m.body).collect()
}

/// Receives up to `max` messages and deletes them in one batch (if any
/// came), every one of them.
pub async fn consume(q: &Queue, max: usize) -> Vec<Message> {
    let got = q.receive(max, LOCK).await.unwrap();
    if !got.is_empty() {
        let outcome = q.delete_batch(&receipts(&got)).await.unwrap();
        assert_eq!(outcome.deleted, receipts(&got), "{outcome:?}");
    }
    got
}
