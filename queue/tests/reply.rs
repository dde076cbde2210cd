//! `Queue::reply_batch`: messages deleted and their replies sent to another
//! queue in one statement, all or nothing.

mod common;

use common::routing::{router, shards, spread};
use common::{LOCK, batch, bodies, exec, expire_leases, ids, in_group, queue, receipts};
use queue::{Error, NewMessage, QueueAttributes};
use sqlx::PgPool;

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_reply_deletes_its_requests_and_sends_its_replies(pool: PgPool) {
    let (requests, responses) = (
        queue(&pool, "requests").await,
        queue(&pool, "responses").await,
    );
    // One send, so the three share a live row: replying to two of them
    // leaves the third leased in it.
    requests.send_batch(&batch(3)).await.unwrap();
    let got = requests.receive(3, LOCK).await.unwrap();
    let answered = receipts(&got[..2]);
    let replies = [NewMessage::new("r0"), NewMessage::new("r1")];
    let outcome = requests
        .reply_batch(&answered, &responses, &replies)
        .await
        .unwrap();
    assert_eq!(outcome.deleted, answered);
    assert!(outcome.stale.is_empty());
    let stats = requests.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 1));
    assert_eq!(responses.stats().await.unwrap().visible, 2);
    expire_leases(&pool).await;
    assert_eq!(ids(&requests.receive(3, LOCK).await.unwrap()), [got[2].id]);
    assert_eq!(
        bodies(&responses.receive(3, LOCK).await.unwrap()),
        ["r0", "r1"]
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_reply_that_cannot_be_sent_deletes_nothing(pool: PgPool) {
    let (requests, responses) = (
        queue(&pool, "requests").await,
        queue(&pool, "responses").await,
    );
    requests.send("job").await.unwrap();
    let got = requests.receive(1, LOCK).await.unwrap();
    // Storing this reply's body fails. Had the delete a statement of its
    // own, it would have taken effect; it shares the send's, and fails.
    exec(
        &pool,
        "alter table queue_chunks add constraint refuse check (not 'refused' = any(bodies))",
    )
    .await;
    let e = requests
        .reply_batch(&receipts(&got), &responses, &[NewMessage::new("refused")])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("refuse"), "{e}");
    exec(&pool, "alter table queue_chunks drop constraint refuse").await;
    assert_eq!(responses.stats().await.unwrap().visible, 0);
    // The lease still holds: the request is answered once it can be.
    let outcome = requests
        .reply_batch(&receipts(&got), &responses, &[NewMessage::new("done")])
        .await
        .unwrap();
    assert_eq!(outcome.deleted, receipts(&got));
    assert_eq!(bodies(&responses.receive(1, LOCK).await.unwrap()), ["done"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_stale_receipt_is_reported_and_its_reply_still_sent(pool: PgPool) {
    let (requests, responses) = (
        queue(&pool, "requests").await,
        queue(&pool, "responses").await,
    );
    requests.send("job").await.unwrap();
    let first = requests.receive(1, LOCK).await.unwrap();
    expire_leases(&pool).await;
    let again = requests.receive(1, LOCK).await.unwrap();
    let outcome = requests
        .reply_batch(&receipts(&first), &responses, &[NewMessage::new("late")])
        .await
        .unwrap();
    assert_eq!(outcome.stale, receipts(&first));
    assert!(outcome.deleted.is_empty());
    // The message stays with its new receiver, whose reply deletes it.
    let outcome = requests
        .reply_batch(&receipts(&again), &responses, &[NewMessage::new("again")])
        .await
        .unwrap();
    assert_eq!(outcome.deleted, receipts(&again));
    let replies = responses.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&replies), ["late", "again"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn replies_to_an_ordered_queue_keep_their_groups_in_order(pool: PgPool) {
    let requests = queue(&pool, "requests").await;
    let responses = common::ordered(&pool).await;
    requests.send_batch(&batch(2)).await.unwrap();
    let got = requests.receive(2, LOCK).await.unwrap();
    let replies = [
        in_group("a1", "a"),
        in_group("b1", "b"),
        in_group("a2", "a"),
    ];
    requests
        .reply_batch(&receipts(&got), &responses, &replies)
        .await
        .unwrap();
    // Each group's oldest first: a2 only with or after a1.
    let first = responses.receive(1, LOCK).await.unwrap();
    assert_eq!(bodies(&first), ["a1"]);
    assert_eq!(bodies(&responses.receive(10, LOCK).await.unwrap()), ["b1"]);
    responses.delete(&first[0].receipt).await.unwrap();
    assert_eq!(bodies(&responses.receive(10, LOCK).await.unwrap()), ["a2"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn replies_are_checked_before_anything_is_deleted(pool: PgPool) {
    let attrs = QueueAttributes {
        max_message_bytes: 1024,
        ..Default::default()
    };
    let requests = queue(&pool, "requests").await;
    let responses = common::queue_with(&pool, "responses", &attrs).await;
    requests.send("job").await.unwrap();
    let got = requests.receive(1, LOCK).await.unwrap();
    let big = [NewMessage::new("x".repeat(2000))];
    let e = requests
        .reply_batch(&receipts(&got), &responses, &big)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::MessageTooLarge { .. }), "{e:?}");
    let none = requests
        .reply_batch(&receipts(&got), &responses, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            none,
            Error::InvalidArgument {
                field: "messages",
                ..
            }
        ),
        "{none:?}"
    );
    assert_eq!(requests.stats().await.unwrap().in_flight, 1);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn replies_to_a_queue_in_another_database_are_refused(pool: PgPool) {
    let router = router(&pool);
    let _cluster = shards(&router, 1).await;
    let attrs = QueueAttributes::default();
    let requests = queue(&pool, "requests").await;
    requests.send("job").await.unwrap();
    let got = requests.receive(1, LOCK).await.unwrap();
    let elsewhere = spread(&router, "responses", &attrs, &["s1"]).await;
    let part = elsewhere.part_on(1).await.unwrap().expect("a part on s1");
    let e = requests
        .reply_batch(&receipts(&got), &part, &[NewMessage::new("r")])
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { field: "to", .. }),
        "{e:?}"
    );
    assert_eq!(requests.stats().await.unwrap().in_flight, 1);
}
