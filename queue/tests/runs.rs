//! Messages sent together share one live row until a receive, delete or
//! visibility change needs them apart; these tests pin down that every one
//! of them still behaves as a message of its own. Also: stats, which are
//! kept as counters rather than counted.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{
    LOCK, batch, bodies, consume, dead_lettering, delayed, exec, expire_leases, ids, queue,
    queue_with, receipts,
};
use queue::{Error, QueueAttributes, Stats};
use sqlx::PgPool;

fn figures(s: &Stats) -> (i64, i64, i64) {
    (s.visible, s.in_flight, s.delayed)
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn receive_takes_part_of_a_batch_and_leaves_the_rest_visible(pool: PgPool) {
    let q = queue(&pool, "part").await;
    let ids = q.send_batch(&batch(10)).await.unwrap();
    let first = q.receive(3, LOCK).await.unwrap();
    assert_eq!(common::ids(&first), ids[..3]);
    let rest = q.receive(100, LOCK).await.unwrap();
    assert_eq!(common::ids(&rest), ids[3..]);
    assert!(q.receive(100, LOCK).await.unwrap().is_empty());
    assert_eq!(figures(&q.stats().await.unwrap()), (0, 10, 0));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn batches_larger_than_a_row_come_back_whole_and_in_order(pool: PgPool) {
    let q = queue(&pool, "big").await;
    let ids = q.send_batch(&batch(1000)).await.unwrap();
    let got = consume(&q, 1000).await;
    assert_eq!(common::ids(&got), ids);
    assert_eq!(q.stats().await.unwrap(), Stats::default());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn messages_leased_together_are_deleted_one_by_one_concurrently(pool: PgPool) {
    let q = queue(&pool, "each").await;
    q.send_batch(&batch(40)).await.unwrap();
    let got = q.receive(40, LOCK).await.unwrap();
    assert_eq!(got.len(), 40);
    // Like a worker whose tasks finish at the same time: every delete hits
    // the same row, and each must take only its own message.
    let tasks: Vec<_> = got
        .iter()
        .map(|m| {
            let (q, receipt) = (q.clone(), m.receipt);
            tokio::spawn(async move { q.delete(&receipt).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(q.stats().await.unwrap(), Stats::default());
    expire_leases(&pool).await;
    assert!(q.receive(100, LOCK).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn undeleted_messages_of_a_shared_lease_come_back_alone(pool: PgPool) {
    let q = queue(&pool, "some").await;
    q.send_batch(&batch(6)).await.unwrap();
    let got = q.receive(6, LOCK).await.unwrap();
    // Delete the lowest (the row's own id) and two others.
    for i in [0, 2, 5] {
        q.delete(&got[i].receipt).await.unwrap();
    }
    assert_eq!(figures(&q.stats().await.unwrap()), (0, 3, 0));
    expire_leases(&pool).await;
    let again = q.receive(10, LOCK).await.unwrap();
    assert_eq!(ids(&again), [got[1].id, got[3].id, got[4].id]);
    // A row with gaps in its ids still pairs each with its own body.
    assert_eq!(bodies(&again), ["m1", "m3", "m4"]);
    assert!(again.iter().all(|m| m.receive_count == 2));
    // The first delivery's receipts are stale now, whole row or not.
    let outcome = q.delete_batch(&receipts(&got)).await.unwrap();
    assert!(outcome.deleted.is_empty());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn visibility_change_moves_only_that_message(pool: PgPool) {
    let q = queue(&pool, "vis").await;
    q.send_batch(&batch(4)).await.unwrap();
    let got = q.receive(4, LOCK).await.unwrap();
    // Release the row's lowest message and one from the middle: the other
    // two stay leased, and every receipt still works.
    q.change_visibility(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    q.change_visibility(&got[2].receipt, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(figures(&q.stats().await.unwrap()), (2, 2, 0));
    let again = q.receive(10, LOCK).await.unwrap();
    assert_eq!(ids(&again), [got[0].id, got[2].id]);
    // Extending one of the two still leased ones, then deleting both.
    q.change_visibility(&got[3].receipt, Duration::from_secs(600))
        .await
        .unwrap();
    q.delete(&got[1].receipt).await.unwrap();
    q.delete(&got[3].receipt).await.unwrap();
    assert!(matches!(
        q.delete(&got[0].receipt).await,
        Err(Error::StaleReceipt)
    ));
    assert_eq!(
        q.delete_batch(&receipts(&again))
            .await
            .unwrap()
            .deleted
            .len(),
        2
    );
    assert_eq!(q.stats().await.unwrap(), Stats::default());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn heartbeat_keeps_a_message_from_expiring_with_its_neighbours(pool: PgPool) {
    let q = queue(&pool, "beat").await;
    q.send_batch(&batch(3)).await.unwrap();
    let got = q.receive(3, Duration::from_secs(2)).await.unwrap();
    q.change_visibility(&got[1].receipt, Duration::from_secs(600))
        .await
        .unwrap();
    // Only the two that were not extended expire.
    let soon = "now() + interval '1 minute'";
    let expire = format!("visible_at = now() - interval '1 second' where visible_at < {soon}");
    exec(&pool, &format!("update queue_messages set {expire}")).await;
    let uncount = format!("leased = leased - 2 where leased > 0 and bucket < queue_bucket({soon})");
    exec(&pool, &format!("update queue_counters set {uncount}")).await;
    let again = q.receive(10, LOCK).await.unwrap();
    assert_eq!(ids(&again), [got[0].id, got[2].id]);
    q.delete(&got[1].receipt).await.unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn stats_follow_every_transition(pool: PgPool) {
    let dlq = queue(&pool, "stats-dlq").await;
    let attrs = dead_lettering(QueueAttributes::default(), "stats-dlq", 1);
    let q = queue_with(&pool, "stats", &attrs).await;
    q.send_batch(&batch(5)).await.unwrap();
    q.send_batch(&[delayed("later", Duration::from_secs(600))])
        .await
        .unwrap();
    assert_eq!(figures(&q.stats().await.unwrap()), (5, 0, 1));

    let got = q.receive(3, LOCK).await.unwrap();
    assert_eq!(figures(&q.stats().await.unwrap()), (2, 3, 1));
    q.delete(&got[0].receipt).await.unwrap();
    assert_eq!(figures(&q.stats().await.unwrap()), (2, 2, 1));

    // Lock expiry needs no write to show.
    expire_leases(&pool).await;
    assert_eq!(figures(&q.stats().await.unwrap()), (4, 0, 1));

    // Received once already: the next receive dead-letters those two.
    let fresh = q.receive(10, LOCK).await.unwrap();
    assert_eq!(fresh.len(), 2);
    let s = q.stats().await.unwrap();
    assert_eq!((figures(&s), s.dead_lettered), ((0, 2, 1), 2));
    assert_eq!(figures(&dlq.stats().await.unwrap()), (2, 0, 0));

    assert_eq!(q.redrive().await.unwrap(), 2);
    let s = q.stats().await.unwrap();
    assert_eq!((figures(&s), s.dead_lettered), ((2, 2, 1), 0));
    assert_eq!(dlq.stats().await.unwrap(), Stats::default());

    assert_eq!(q.purge().await.unwrap(), 5);
    assert_eq!(q.stats().await.unwrap(), Stats::default());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn stats_read_counters_not_messages(pool: PgPool) {
    let q = queue(&pool, "plan").await;
    q.send_batch(&batch(10)).await.unwrap();
    // Rows written behind the queue's back are not counted: stats do not
    // walk the messages, which is what keeps them cheap on a big backlog.
    exec(&pool, "insert into queue_messages (queue_id, pos, ids, visible_at, enqueued_at) select id, 1000000, '{1000000}', now(), now() from queue_queues").await;
    assert_eq!(q.stats().await.unwrap().visible, 10);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn racing_receivers_and_deleters_account_for_every_message(pool: PgPool) {
    let q = queue(&pool, "churn").await;
    let mut sent = HashSet::new();
    for _ in 0..5 {
        sent.extend(q.send_batch(&batch(97)).await.unwrap());
    }
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = q.receive(3 + i * 11, LOCK).await.unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    // Odd receivers delete one by one, even ones in a batch.
                    if i % 2 == 1 {
                        for m in &batch {
                            q.delete(&m.receipt).await.unwrap();
                        }
                    } else {
                        let outcome = q.delete_batch(&receipts(&batch)).await.unwrap();
                        assert!(outcome.stale.is_empty());
                    }
                    got.extend(batch.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "message {id} delivered twice");
        }
    }
    assert_eq!(seen, sent);
    assert_eq!(q.stats().await.unwrap(), Stats::default());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn receive_fills_up_from_small_runs_after_big_ones(pool: PgPool) {
    let q = queue(&pool, "mixed").await;
    // Teach the receiver that runs hold 100 messages...
    q.send_batch(&batch(100)).await.unwrap();
    assert_eq!(consume(&q, 100).await.len(), 100);
    // ...then offer it runs of one message each.
    for i in 0..30 {
        q.send(format!("single {i}")).await.unwrap();
    }
    assert_eq!(q.receive(30, LOCK).await.unwrap().len(), 30);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn run_straddling_two_body_chunks_comes_back_with_its_bodies(pool: PgPool) {
    let q = queue(&pool, "straddle").await;
    // A delayed first message ends the first run at one message, so the
    // next run of 128 starts one message into the batch and crosses into
    // its second body chunk (chunks are cut every 128 from the batch's
    // first id).
    let mut messages = batch(129);
    messages[0].delay = Some(Duration::from_secs(600));
    let ids = q.send_batch(&messages).await.unwrap();
    let got = q.receive(128, LOCK).await.unwrap();
    assert_eq!(common::ids(&got), ids[1..]);
    assert!(
        got.iter()
            .zip(&messages[1..])
            .all(|(m, sent)| m.body == sent.body),
        "every message comes back with its own body"
    );
    assert_eq!(figures(&q.stats().await.unwrap()), (0, 128, 1));
}
