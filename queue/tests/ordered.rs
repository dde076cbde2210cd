//! Ordered queues: one message of a group at a time, in the order sent,
//! against a real Postgres (one fresh database per test).

mod common;

use common::{LOCK, bodies, expire_leases, in_group, ordered};
use sqlx::PgPool;

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn ordered_group_waits_for_its_leased_head(pool: PgPool) {
    let q = ordered(&pool).await;
    q.send_batch(&[
        in_group("a1", "a"),
        in_group("a2", "a"),
        in_group("b1", "b"),
    ])
    .await
    .unwrap();

    let first = q.receive(10, LOCK).await.unwrap();
    assert_eq!(
        bodies(&first),
        ["a1", "b1"],
        "one head per group, groups in parallel"
    );

    // a2 is held back while a1 is leased.
    assert!(q.receive(10, LOCK).await.unwrap().is_empty());

    q.delete(&first[0].receipt).await.unwrap();
    let next = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&next), ["a2"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn ordered_group_redelivers_its_head_before_the_next(pool: PgPool) {
    let q = ordered(&pool).await;
    q.send_batch(&[in_group("1", "g"), in_group("2", "g")])
        .await
        .unwrap();
    let m = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&m), ["1"]);
    expire_leases(&pool).await;
    let again = q.receive(10, LOCK).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("1", 2));
}
