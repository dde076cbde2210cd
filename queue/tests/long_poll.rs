//! Long polling: a waiting receive woken by the NOTIFY of a send, NOTIFYs
//! shared by quick sends, the wait running out, and a lease outliving the
//! receiver whose connection died. Against a real Postgres (one fresh
//! database per test).

mod common;

use std::time::{Duration, Instant};

use common::{LOCK, WAKE_BOUND, await_listeners, queue, single_connection, woken_only};
use queue::Queues;
use sqlx::PgPool;

/// Starts a receive on the queue `name` that waits up to 20 s, woken by
/// NOTIFY alone, and returns once it is waiting; the task yields what it
/// got and how long it waited.
async fn waiting_receiver(
    pool: &PgPool,
    name: &str,
) -> tokio::task::JoinHandle<(Vec<queue::Message>, Duration)> {
    let q = woken_only(pool).open(name).await.unwrap();
    let receiver = tokio::spawn({
        async move {
            let start = Instant::now();
            let got = q
                .receive_wait(1, LOCK, Duration::from_secs(20))
                .await
                .unwrap();
            (got, start.elapsed())
        }
    });
    await_listeners(pool, 1).await;
    receiver
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn long_poll_returns_as_soon_as_a_message_is_sent(pool: PgPool) {
    queue(&pool, "poll").await;
    // A sender in another "process": its own Queues, so its own notifier.
    let sender = Queues::new(pool.clone()).open("poll").await.unwrap();
    let receiver = waiting_receiver(&pool, "poll").await;
    sender.send("wake up").await.unwrap();
    let (got, waited) = receiver.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(waited < WAKE_BOUND, "woke after {waited:?}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn long_poll_wakes_when_a_transaction_that_sent_and_notified_commits(pool: PgPool) {
    queue(&pool, "poll").await;
    let sender = Queues::new(pool.clone()).open("poll").await.unwrap();
    let receiver = waiting_receiver(&pool, "poll").await;
    let mut tx = pool.begin().await.unwrap();
    let message = [queue::NewMessage::new("wake up")];
    sender.send_batch_in(&mut tx, &message).await.unwrap();
    sender.notify_in(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let (got, waited) = receiver.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(waited < WAKE_BOUND, "woke after {waited:?}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn sends_within_the_notify_interval_share_one_notify(pool: PgPool) {
    queue(&pool, "busy").await;
    // An interval far longer than the sends take, however slow the
    // machine: the first send notifies at once, every later one is folded
    // into a NOTIFY due a minute on. At the usual 5 ms a slow machine's
    // sends are each an interval apart and nothing shares.
    let q = Queues::new(pool.clone())
        .with_notify_interval(Duration::from_secs(60))
        .open("busy")
        .await
        .unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen("darkroom_queue").await.unwrap();
    let sends = 200;
    for i in 0..sends {
        q.send(format!("m{i}")).await.unwrap();
    }
    // A quiet second after the sends: every NOTIFY not held back for the
    // interval has arrived.
    let mut notifies = 0;
    while let Ok(n) = tokio::time::timeout(Duration::from_secs(1), listener.recv()).await {
        n.unwrap();
        notifies += 1;
    }
    assert_eq!(notifies, 1, "{notifies} NOTIFYs for {sends} sends");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn long_poll_gives_up_after_wait(pool: PgPool) {
    let q = queue(&pool, "quiet").await;
    let start = Instant::now();
    let got = q
        .receive_wait(1, LOCK, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(got.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn message_of_a_receiver_whose_connection_died_comes_back(pool: PgPool) {
    let q = queue(&pool, "crash").await;
    q.send("survivor").await.unwrap();

    // The "crashing" receiver: its own connection, a short lock, then its
    // backend is killed mid-lease.
    let doomed_pool = single_connection(&pool).await;
    let doomed = Queues::new(doomed_pool.clone())
        .open("crash")
        .await
        .unwrap();
    let leased = doomed.receive(1, Duration::from_millis(500)).await.unwrap();
    assert_eq!(leased.len(), 1);
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&doomed_pool)
        .await
        .unwrap();
    sqlx::query("select pg_terminate_backend($1)")
        .bind(pid)
        .execute(&pool)
        .await
        .unwrap();

    // Locked while the lease lasts, delivered again once it expires.
    assert!(q.receive(1, LOCK).await.unwrap().is_empty());
    let again = q
        .receive_wait(1, LOCK, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].body.as_str(), again[0].receive_count),
        ("survivor", 2)
    );
}
