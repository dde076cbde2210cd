//! Dead letter queues: where messages go that are received too often,
//! how they come back, and which queues may be one, against a real Postgres
//! (one fresh database per test).

mod common;

use common::{
    LOCK, bodies, dead_lettering, expire_leases, in_group, ordered_attributes, queue, redrive,
    with_dead_letters,
};
use queue::{Error, QueueAttributes, Queues};
use sqlx::PgPool;

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn poison_message_moves_to_dead_letter_queue_and_redrives(pool: PgPool) {
    let (queues, q) = with_dead_letters(&pool, 2).await;
    let id = q.send("poison").await.unwrap();
    for _ in 0..2 {
        assert_eq!(q.receive(1, LOCK).await.unwrap().len(), 1);
        expire_leases(&pool).await;
    }
    // Third receive: over the limit, so it is dead-lettered, not delivered.
    assert!(q.receive(1, LOCK).await.unwrap().is_empty());
    assert_eq!(q.stats().await.unwrap().dead_lettered, 1);

    let dead = queues.open("work.dead").await.unwrap();
    let kept = dead.receive(1, LOCK).await.unwrap();
    assert_eq!(kept.len(), 1, "dead letters are kept and inspectable");
    assert_eq!((kept[0].id, kept[0].body.as_str()), (id, "poison"));

    let back = redrive(&q, &dead, &kept[0]).await;
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].id, back[0].receive_count), (id, 1));
    assert_eq!(q.stats().await.unwrap().dead_lettered, 0);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn poison_head_of_an_ordered_group_moves_aside_for_the_next(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    queues
        .put("ordered.dead", &ordered_attributes())
        .await
        .unwrap();
    let attrs = dead_lettering(ordered_attributes(), "ordered.dead", 1);
    let (q, _) = queues.put("ordered", &attrs).await.unwrap();
    q.send_batch(&[in_group("a1", "a"), in_group("a2", "a")])
        .await
        .unwrap();
    assert_eq!(q.receive(1, LOCK).await.unwrap()[0].body, "a1");
    expire_leases(&pool).await;
    // a1 is past its limit: this receive moves it to the dead letter queue
    // and delivers the group's next message in its place.
    let next = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&next), ["a2"]);
    let dead = queues.open("ordered.dead").await.unwrap();
    assert_eq!(dead.receive(10, LOCK).await.unwrap()[0].body, "a1");
    assert_eq!(q.stats().await.unwrap().dead_lettered, 1);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn queue_used_as_dead_letter_queue_cannot_be_deleted(pool: PgPool) {
    let (queues, _) = with_dead_letters(&pool, 3).await;
    assert!(matches!(
        queues.delete("work.dead").await,
        Err(Error::InvalidArgument { .. })
    ));
    queues.delete("work").await.unwrap();
    queues.delete("work.dead").await.unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn dead_letter_queue_must_exist(pool: PgPool) {
    let attrs = dead_lettering(QueueAttributes::default(), "missing", 3);
    assert!(matches!(
        Queues::new(pool).put("q", &attrs).await,
        Err(Error::InvalidAttribute {
            field: "dead_letter_queue",
            ..
        })
    ));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn dead_letter_queue_must_be_of_the_same_kind(pool: PgPool) {
    queue(&pool, "plain-dlq").await;
    let attrs = dead_lettering(ordered_attributes(), "plain-dlq", 3);
    assert!(matches!(
        Queues::new(pool).put("ordered", &attrs).await,
        Err(Error::InvalidAttribute { field: "dead_letter_queue", message }) if message.contains("same kind")
    ));
}
