//! Ordered queues, dead letters, rewind, long polling, retention and crash
//! recovery, against a real Postgres (one fresh database per test).

use std::time::{Duration, Instant};

use chrono::Utc;
use queue::RewindTo;
use queue::{NewMessage, QueueAttributes, QueueKind, Queues};
use sqlx::PgPool;

const LOCK: Duration = Duration::from_secs(30);

async fn expire_leases(pool: &PgPool) {
    // Stats see lock expiry by the clock alone; moved back in time like
    // this, their counters must be told.
    sqlx::query("update queue_messages set visible_at = now() - interval '1 second' where lease is not null")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("update queue_counters set leased = 0")
        .execute(pool)
        .await
        .unwrap();
}

fn in_group(body: &str, group: &str) -> NewMessage {
    NewMessage {
        body: body.into(),
        delay: None,
        group: Some(group.into()),
    }
}

async fn ordered(pool: &PgPool) -> queue::Queue {
    let attrs = QueueAttributes {
        kind: QueueKind::Ordered,
        ..Default::default()
    };
    Queues::new(pool.clone())
        .put("ordered", &attrs)
        .await
        .unwrap()
        .0
}

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

    let first: Vec<_> = q.receive(10, LOCK).await.unwrap();
    let bodies: Vec<_> = first.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["a1", "b1"],
        "one head per group, groups in parallel"
    );

    // a2 is held back while a1 is leased.
    assert!(q.receive(10, LOCK).await.unwrap().is_empty());

    q.delete(&first[0].receipt).await.unwrap();
    let next = q.receive(10, LOCK).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].body, "a2");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn ordered_group_redelivers_its_head_before_the_next(pool: PgPool) {
    let q = ordered(&pool).await;
    q.send_batch(&[in_group("1", "g"), in_group("2", "g")])
        .await
        .unwrap();
    let m = q.receive(10, LOCK).await.unwrap();
    assert_eq!(m.len(), 1);
    expire_leases(&pool).await;
    let again = q.receive(10, LOCK).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("1", 2));
}

async fn with_dead_letters(pool: &PgPool, max: u32) -> (Queues, queue::Queue) {
    let queues = Queues::new(pool.clone());
    queues
        .put("work.dead", &QueueAttributes::default())
        .await
        .unwrap();
    let attrs = QueueAttributes {
        max_receive_count: Some(max),
        dead_letter_queue: Some("work.dead".into()),
        ..Default::default()
    };
    let (q, _) = queues.put("work", &attrs).await.unwrap();
    (queues, q)
}

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
    dead.change_visibility(&kept[0].receipt, Duration::ZERO)
        .await
        .unwrap();

    assert_eq!(q.redrive().await.unwrap(), 1);
    let back = q.receive(1, LOCK).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].id, back[0].receive_count), (id, 1));
    assert_eq!(q.stats().await.unwrap().dead_lettered, 0);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn poison_head_of_an_ordered_group_moves_aside_for_the_next(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let ordered = QueueAttributes {
        kind: QueueKind::Ordered,
        ..Default::default()
    };
    queues.put("ordered.dead", &ordered).await.unwrap();
    let attrs = QueueAttributes {
        max_receive_count: Some(1),
        dead_letter_queue: Some("ordered.dead".into()),
        ..ordered
    };
    let (q, _) = queues.put("ordered", &attrs).await.unwrap();
    q.send_batch(&[in_group("a1", "a"), in_group("a2", "a")])
        .await
        .unwrap();
    assert_eq!(q.receive(10, LOCK).await.unwrap()[0].body, "a1");
    expire_leases(&pool).await;
    // a1 is past its limit: this receive moves it to the dead letter queue
    // and delivers the group's next message in its place.
    let next = q.receive(10, LOCK).await.unwrap();
    assert_eq!(
        next.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["a2"]
    );
    let dead = queues.open("ordered.dead").await.unwrap();
    assert_eq!(dead.receive(10, LOCK).await.unwrap()[0].body, "a1");
    assert_eq!(q.stats().await.unwrap().dead_lettered, 1);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn rewind_to_id_redelivers_deleted_messages_in_id_order(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let (q, _) = queues
        .put("log", &QueueAttributes::default())
        .await
        .unwrap();
    let ids = q
        .send_batch(
            &(0..5)
                .map(|i| NewMessage::new(format!("m{i}")))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let got = q.receive(10, LOCK).await.unwrap();
    let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
    q.delete_batch(&receipts).await.unwrap();
    q.send("later").await.unwrap();

    assert_eq!(q.rewind(RewindTo::Id(ids[2])).await.unwrap(), 3);
    let again = q.receive(10, LOCK).await.unwrap();
    let bodies: Vec<_> = again.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["m2", "m3", "m4", "later"]);
    assert!(again.iter().all(|m| m.receive_count == 1));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn rewind_to_time_skips_live_messages_and_older_ones(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let (q, _) = queues
        .put("log", &QueueAttributes::default())
        .await
        .unwrap();
    q.send("old").await.unwrap();
    // Pretend "old" was sent an hour ago.
    sqlx::query("update queue_chunks set enqueued_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    let cut = Utc::now() - chrono::Duration::seconds(5);
    q.send("new").await.unwrap();
    q.send("live").await.unwrap();
    let got = q.receive(2, LOCK).await.unwrap();
    let old_and_new: Vec<_> = got.iter().map(|m| m.receipt).collect();
    q.delete_batch(&old_and_new).await.unwrap();

    // Only "new" was deleted after the cut; "live" was never deleted.
    assert_eq!(q.rewind(RewindTo::Time(cut)).await.unwrap(), 1);
    let bodies: Vec<_> = q
        .receive(10, LOCK)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["new", "live"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn rewind_before_the_window_is_refused(pool: PgPool) {
    let attrs = QueueAttributes {
        rewind_window: Duration::from_secs(60),
        ..Default::default()
    };
    let (q, _) = Queues::new(pool).put("short", &attrs).await.unwrap();
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

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn long_poll_returns_as_soon_as_a_message_is_sent(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let (q, _) = queues
        .put("poll", &QueueAttributes::default())
        .await
        .unwrap();
    // A sender in another "process": its own Queues, so its own notifier.
    let sender = Queues::new(pool.clone()).open("poll").await.unwrap();
    let receiver = tokio::spawn({
        let q = q.clone();
        async move {
            let start = Instant::now();
            let got = q
                .receive_wait(1, LOCK, Duration::from_secs(20))
                .await
                .unwrap();
            (got, start.elapsed())
        }
    });
    // Let the receiver find the queue empty and start waiting.
    while sqlx::query_scalar::<_, i64>(
        "select count(*) from pg_stat_activity where query like 'LISTEN%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
        == 0
    {
        tokio::task::yield_now().await;
    }
    sender.send("wake up").await.unwrap();
    let (got, waited) = receiver.await.unwrap();
    assert_eq!(got.len(), 1);
    // Well under the 500 ms fallback poll: the NOTIFY woke it, not a timer.
    assert!(waited < Duration::from_millis(450), "woke after {waited:?}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn sends_in_quick_succession_share_notifies(pool: PgPool) {
    let (q, _) = Queues::new(pool.clone())
        .put("busy", &QueueAttributes::default())
        .await
        .unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen("darkroom_queue").await.unwrap();
    let sends = 200;
    let start = Instant::now();
    for i in 0..sends {
        q.send(format!("m{i}")).await.unwrap();
    }
    let elapsed = start.elapsed();
    // The last send's NOTIFY follows within one interval; a quiet second
    // after it means every NOTIFY has arrived.
    let mut notifies = 0;
    while let Ok(n) = tokio::time::timeout(Duration::from_secs(1), listener.recv()).await {
        n.unwrap();
        notifies += 1;
    }
    assert!(notifies >= 1, "the sends must wake receivers");
    // At most one NOTIFY per 5 ms interval (plus the first, sent at once),
    // not one per send.
    let bound = elapsed.as_millis() as usize / 5 + 2;
    assert!(
        notifies <= bound && notifies < sends / 2,
        "{notifies} NOTIFYs for {sends} sends in {elapsed:?}"
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn long_poll_gives_up_after_wait(pool: PgPool) {
    let (q, _) = Queues::new(pool)
        .put("quiet", &QueueAttributes::default())
        .await
        .unwrap();
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
    let (q, _) = Queues::new(pool.clone())
        .put("crash", &QueueAttributes::default())
        .await
        .unwrap();
    q.send("survivor").await.unwrap();

    // The "crashing" receiver: its own connection, a short lock, then its
    // backend is killed mid-lease.
    let doomed_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
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

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn retention_expires_old_undeleted_messages(pool: PgPool) {
    let attrs = QueueAttributes {
        retention: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let (q, _) = Queues::new(pool.clone())
        .put("short", &attrs)
        .await
        .unwrap();
    q.send("stale").await.unwrap();
    q.send("fresh").await.unwrap();
    sqlx::query("update queue_messages set enqueued_at = now() - interval '2 minutes' where id = (select min(id) from queue_messages)")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        queue::Maintenance::new(pool.clone())
            .expire_messages(1000)
            .await
            .unwrap(),
        1
    );
    let left: Vec<_> = q
        .receive(10, LOCK)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(left, ["fresh"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn queue_without_retention_keeps_old_messages(pool: PgPool) {
    let attrs = QueueAttributes {
        retention: None,
        ..Default::default()
    };
    let (q, _) = Queues::new(pool.clone()).put("keep", &attrs).await.unwrap();
    q.send("old").await.unwrap();
    sqlx::query("update queue_messages set enqueued_at = now() - interval '400 days'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        queue::Maintenance::new(pool.clone())
            .expire_messages(1000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        queue::Maintenance::new(pool.clone())
            .dead_letter_expired(1000)
            .await
            .unwrap(),
        0
    );
    let left = q.receive(10, LOCK).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(q.attributes().retention, None);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn expired_messages_of_a_queue_with_a_dead_letter_queue_move_there(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    queues
        .put(
            "work.dead",
            &QueueAttributes {
                retention: None,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (q, _) = queues
        .put(
            "work",
            &QueueAttributes {
                retention: Some(Duration::from_secs(60)),
                max_receive_count: Some(3),
                dead_letter_queue: Some("work.dead".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    q.send("stale").await.unwrap();
    q.send("fresh").await.unwrap();
    sqlx::query("update queue_messages set enqueued_at = now() - interval '2 minutes' where id = (select min(id) from queue_messages)")
        .execute(&pool)
        .await
        .unwrap();
    // Queues with a dead letter queue are not the delete's to expire.
    assert_eq!(
        queue::Maintenance::new(pool.clone())
            .expire_messages(1000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        queue::Maintenance::new(pool.clone())
            .dead_letter_expired(1000)
            .await
            .unwrap(),
        1
    );
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.dead_lettered), (1, 1), "{stats:?}");
    let dead = queues.open("work.dead").await.unwrap();
    let got = dead.receive(10, LOCK).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "stale");
    assert_eq!(
        got[0].dead_letter_reason,
        Some(queue::DeadLetterReason::Expired)
    );
    assert_eq!(dead.stats().await.unwrap().in_flight, 1);
    // Redriven, it is an ordinary message again.
    dead.change_visibility(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(q.redrive().await.unwrap(), 1);
    let back = q.receive(10, LOCK).await.unwrap();
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|m| m.dead_letter_reason.is_none()));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn expired_bodies_are_dropped_a_partition_at_a_time(pool: PgPool) {
    let attrs = QueueAttributes {
        retention: Some(Duration::from_secs(60)),
        rewind_window: Duration::from_secs(60),
        ..Default::default()
    };
    let (q, _) = Queues::new(pool.clone())
        .put("churn", &attrs)
        .await
        .unwrap();
    let got = {
        q.send("gone").await.unwrap();
        q.receive(1, LOCK).await.unwrap()
    };
    q.delete(&got[0].receipt).await.unwrap();
    let partitions = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_inherits where inhparent = 'queue_chunks'::regclass",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = partitions().await;
    // Nothing is old enough yet.
    assert_eq!(
        queue::Maintenance::new(pool.clone())
            .drop_expired_bodies()
            .await
            .unwrap(),
        0
    );
    // Move the id sequence past the first partition and age its bodies.
    sqlx::query("select setval('queue_message_ids', 10000000000)")
        .execute(&pool)
        .await
        .unwrap();
    queue::Maintenance::new(pool.clone())
        .ensure_partitions()
        .await
        .unwrap();
    sqlx::query("update queue_chunks set enqueued_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        queue::Maintenance::new(pool.clone())
            .drop_expired_bodies()
            .await
            .unwrap(),
        1
    );
    assert_eq!(partitions().await, before);
    // Sending still works in the new partition.
    q.send("after").await.unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn purge_empties_the_queue(pool: PgPool) {
    let (q, _) = Queues::new(pool)
        .put("p", &QueueAttributes::default())
        .await
        .unwrap();
    q.send_batch(&[NewMessage::new("a"), NewMessage::new("b")])
        .await
        .unwrap();
    q.receive(1, LOCK).await.unwrap();
    assert_eq!(q.purge().await.unwrap(), 2);
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 0));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn queue_used_as_dead_letter_queue_cannot_be_deleted(pool: PgPool) {
    let (queues, _) = with_dead_letters(&pool, 3).await;
    assert!(matches!(
        queues.delete("work.dead").await,
        Err(queue::Error::InvalidArgument { .. })
    ));
    queues.delete("work").await.unwrap();
    queues.delete("work.dead").await.unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn dead_letter_queue_must_exist(pool: PgPool) {
    let attrs = QueueAttributes {
        max_receive_count: Some(3),
        dead_letter_queue: Some("missing".into()),
        ..Default::default()
    };
    assert!(matches!(
        Queues::new(pool).put("q", &attrs).await,
        Err(queue::Error::InvalidAttribute {
            field: "dead_letter_queue",
            ..
        })
    ));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn maintenance_vacuums_the_churning_tables_itself(pool: PgPool) {
    let q = Queues::new(pool.clone())
        .put("churn", &QueueAttributes::default())
        .await
        .unwrap()
        .0;
    // 1500 single-message rows, received and deleted: 1500 dead rows.
    for _ in 0..1500 {
        q.send("x").await.unwrap();
    }
    loop {
        let got = q.receive(1000, LOCK).await.unwrap();
        if got.is_empty() {
            break;
        }
        let receipts: Vec<_> = got.iter().map(|m| m.receipt).collect();
        q.delete_batch(&receipts).await.unwrap();
    }
    // Dead rows reach the statistics within a second or so; poll for them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut vacuumed = 0;
    while vacuumed == 0 && Instant::now() < deadline {
        vacuumed = queue::Maintenance::new(pool.clone())
            .vacuum()
            .await
            .unwrap();
        if vacuumed == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(vacuumed >= 1, "no vacuum although 1500 rows died");
    let last: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "select last_vacuum from pg_stat_user_tables where relname = 'queue_messages'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(last.is_some());
}
