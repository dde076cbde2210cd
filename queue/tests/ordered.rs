//! Ordered queues: each group in the order sent, a batch of it at a time,
//! held back while any of it is leased, against a real Postgres (one fresh
//! database per test).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{LOCK, bodies, expire_leases, in_group, ordered, receipts};
use sqlx::PgPool;

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_receive_takes_each_group_in_order_and_holds_it_while_leased(pool: PgPool) {
    let q = ordered(&pool).await;
    q.send_batch(&[
        in_group("a1", "a"),
        in_group("a2", "a"),
        in_group("b1", "b"),
    ])
    .await
    .unwrap();

    let first = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&first), ["a1", "a2", "b1"], "groups in parallel");

    // What comes after a leased batch waits for all of it.
    q.send_batch(&[in_group("a3", "a")]).await.unwrap();
    assert!(q.receive(10, LOCK).await.unwrap().is_empty());
    q.delete(&first[0].receipt).await.unwrap();
    assert!(
        q.receive(10, LOCK).await.unwrap().is_empty(),
        "a2 still leased"
    );
    q.delete(&first[1].receipt).await.unwrap();
    let next = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&next), ["a3"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_receive_of_one_takes_only_a_groups_head(pool: PgPool) {
    let q = ordered(&pool).await;
    q.send_batch(&[in_group("1", "g"), in_group("2", "g")])
        .await
        .unwrap();
    assert_eq!(bodies(&q.receive(1, LOCK).await.unwrap()), ["1"]);
    assert!(q.receive(10, LOCK).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn receives_made_together_never_split_a_group_between_them(pool: PgPool) {
    let q = ordered(&pool).await;
    q.send_batch(&[in_group("1", "g"), in_group("2", "g")])
        .await
        .unwrap();
    // Made together through one handle, these share a runner (see
    // `group`); each still gets whole groups, so 2 waits for 1.
    let (a, b) = futures::join!(q.receive(1, LOCK), q.receive(1, LOCK));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut got = bodies(&a);
    got.extend(bodies(&b));
    assert_eq!(got, ["1"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn ordered_group_redelivers_its_head_before_the_next(pool: PgPool) {
    let q = ordered(&pool).await;
    q.send_batch(&[in_group("1", "g"), in_group("2", "g")])
        .await
        .unwrap();
    let m = q.receive(1, LOCK).await.unwrap();
    assert_eq!(bodies(&m), ["1"]);
    expire_leases(&pool).await;
    let again = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&again), ["1", "2"]);
    assert_eq!((again[0].receive_count, again[1].receive_count), (2, 1));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_batch_stops_at_the_first_message_still_leased(pool: PgPool) {
    let q = ordered(&pool).await;
    q.send_batch(&[in_group("1", "g"), in_group("2", "g"), in_group("3", "g")])
        .await
        .unwrap();
    let got = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&got), ["1", "2", "3"]);
    // The head comes back on its own; 2 and 3 are still out.
    q.change_visibility(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = q.receive(10, LOCK).await.unwrap();
    assert_eq!(bodies(&again), ["1"], "2 is leased: nothing past it");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn concurrent_receivers_keep_every_group_in_order(pool: PgPool) {
    const GROUPS: usize = 20;
    const EACH: usize = 30;
    let q = ordered(&pool).await;
    let sent: Vec<_> = (0..EACH)
        .flat_map(|i| (0..GROUPS).map(move |g| in_group(&format!("{g}:{i}"), &g.to_string())))
        .collect();
    for chunk in sent.chunks(100) {
        q.send_batch(chunk).await.unwrap();
    }
    // Each group's messages as received; appended before the delete that
    // lets the group's next batch out, so in the order they were handed out.
    let received: Arc<Mutex<HashMap<String, Vec<usize>>>> = Arc::default();
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let (q, received) = (q.clone(), received.clone());
            tokio::spawn(async move {
                let mut largest_share = 0;
                let mut idle = 0;
                while idle < 20 {
                    let got = q.receive(10, LOCK).await.unwrap();
                    if got.is_empty() {
                        idle += 1;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    idle = 0;
                    let mut shares: HashMap<&str, usize> = HashMap::new();
                    {
                        let mut received = received.lock().unwrap();
                        for m in &got {
                            let (group, i) = m.body.split_once(':').unwrap();
                            *shares.entry(group).or_default() += 1;
                            received
                                .entry(group.to_owned())
                                .or_default()
                                .push(i.parse().unwrap());
                        }
                    }
                    largest_share = largest_share.max(shares.into_values().max().unwrap());
                    q.delete_batch(&receipts(&got)).await.unwrap();
                }
                largest_share
            })
        })
        .collect();
    let mut largest_share = 0;
    for r in receivers {
        largest_share = largest_share.max(r.await.unwrap());
    }
    let received = received.lock().unwrap();
    assert_eq!(received.len(), GROUPS);
    for (group, order) in received.iter() {
        assert_eq!(
            *order,
            (0..EACH).collect::<Vec<_>>(),
            "group {group}: in order, once each"
        );
    }
    assert!(largest_share > 1, "a receive takes several of a group");
}
