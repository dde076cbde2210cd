//! Rewind: deleted messages delivered again, from an id or a time on,
//! against a real Postgres (one fresh database per test).

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{LOCK, backdate, batch, bodies, consume, queue, queue_with, receive_bodies};
use queue::{QueueAttributes, RewindTo};
use sqlx::PgPool;

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn rewind_to_id_redelivers_deleted_messages_in_id_order(pool: PgPool) {
    let q = queue(&pool, "log").await;
    let ids = q.send_batch(&batch(5)).await.unwrap();
    assert_eq!(consume(&q, 10).await.len(), 5);
    q.send("later").await.unwrap();

    assert_eq!(q.rewind(RewindTo::Id(ids[2])).await.unwrap(), 3);
    let again = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&again), ["m2", "m3", "m4", "later"]);
    assert!(again.iter().all(|m| m.receive_count == 1));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn rewind_to_time_skips_live_messages_and_older_ones(pool: PgPool) {
    let q = queue(&pool, "log").await;
    q.send("old").await.unwrap();
    // Pretend "old" was sent an hour ago.
    backdate(&pool, "queue_chunks", "1 hour").await;
    let cut = Utc::now() - chrono::Duration::seconds(5);
    q.send("new").await.unwrap();
    q.send("live").await.unwrap();
    assert_eq!(bodies(&consume(&q, 2).await), ["old", "new"]);

    // Only "new" was deleted after the cut; "live" was never deleted.
    assert_eq!(q.rewind(RewindTo::Time(cut)).await.unwrap(), 1);
    assert_eq!(receive_bodies(&q, 10).await, ["new", "live"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn rewind_before_the_window_is_refused(pool: PgPool) {
    let attrs = QueueAttributes {
        rewind_window: Duration::from_secs(60),
        ..Default::default()
    };
    let q = queue_with(&pool, "short", &attrs).await;
    let err = q
        .rewind(RewindTo::Time(Utc::now() - chrono::Duration::hours(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            queue::Error::InvalidArgument {
                field: "to_time",
                ..
            }
        ),
        "{err}"
    );
}
