//! Schema changes keep what a deployment already holds, against a real
//! Postgres (one fresh database per test).

use std::time::Duration;

use queue::{QueueAttributes, Queues};
use sqlx::PgPool;

/// Applies the migrations up to (not including) `version`.
async fn migrate_before(pool: &PgPool, version: i64) {
    for m in queue::MIGRATOR.iter().filter(|m| m.version < version) {
        sqlx::raw_sql(&m.sql).execute(pool).await.unwrap();
    }
}

async fn migrate_from(pool: &PgPool, version: i64) {
    for m in queue::MIGRATOR.iter().filter(|m| m.version >= version) {
        sqlx::raw_sql(&m.sql).execute(pool).await.unwrap();
    }
}

const CHUNKS: i64 = 20261125000001;

#[sqlx::test(migrations = false)]
async fn bodies_stored_one_per_row_survive_the_move_to_chunks(pool: PgPool) {
    migrate_before(&pool, CHUNKS).await;
    // What the one-row-per-body layout held: a sent batch of 200, still
    // live, and a deleted one of 3 on an ordered queue, kept for rewind.
    sqlx::raw_sql(
        "insert into queue_queues (name) values ('plain');
         insert into queue_queues (name, kind) values ('ordered', 'ordered');
         select nextval('queue_message_ids'), nextval('queue_message_ids');
         insert into queue_bodies (id, queue_id, body)
             select 1000 + g, 1, 'body ' || g from generate_series(0, 199) g;
         insert into queue_messages (queue_id, pos, ids, visible_at, enqueued_at)
             values (1, 1000, array(select 1000 + g from generate_series(0, 199) g), now(), now());
         insert into queue_counters (queue_id, bucket, slot, live) values (1, 0, 0, 200);
         insert into queue_bodies (id, queue_id, body, message_group)
             select 2000 + g, 2, 'ordered ' || g, 'g' || g from generate_series(0, 2) g;",
    )
    .execute(&pool)
    .await
    .unwrap();
    migrate_from(&pool, CHUNKS).await;

    let queues = Queues::new(pool.clone());
    let plain = queues.open("plain").await.unwrap();
    let got = plain.receive(1000, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 200);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.id, 1000 + i as i64);
        assert_eq!(m.body, format!("body {i}"));
    }

    let ordered = queues.open("ordered").await.unwrap();
    let restored = ordered.rewind(queue::RewindTo::Id(0)).await.unwrap();
    assert_eq!(restored, 3);
    // One per group, each group its own: the groups came along.
    let got = ordered.receive(10, Duration::from_secs(30)).await.unwrap();
    let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["ordered 0", "ordered 1", "ordered 2"]);

    // New sends land in chunks next to the moved ones.
    let (fresh, _) = queues
        .put("fresh", &QueueAttributes::default())
        .await
        .unwrap();
    fresh.send("after").await.unwrap();
    let got = fresh.receive(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got[0].body, "after");
}

/// `DATABASE_URL` pointed at `pool`'s database (each test has its own).
async fn url_of(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let server = std::env::var("DATABASE_URL").unwrap();
    let (server, _) = server.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

#[sqlx::test(migrations = false)]
async fn a_role_that_may_not_migrate_waits_until_the_owner_has(pool: PgPool) {
    let url = url_of(&pool).await;
    let waiting = tokio::spawn(async move {
        queue::connect_migrated(Some(&url), 1, &queue::MIGRATOR, Duration::from_secs(60)).await
    });
    queue::MIGRATOR.run(&pool).await.unwrap();
    let connected = waiting.await.unwrap().unwrap();
    Queues::new(connected)
        .ensure("after", &QueueAttributes::default())
        .await
        .unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_role_that_may_not_migrate_names_the_migrations_still_missing(pool: PgPool) {
    let last = queue::MIGRATOR.iter().last().unwrap().version;
    let mut before = sqlx::migrate::Migrator::DEFAULT;
    before.migrations = queue::MIGRATOR
        .iter()
        .filter(|m| m.version < last)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    let url = url_of(&pool).await;
    let error = queue::connect_migrated(Some(&url), 1, &queue::MIGRATOR, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains(&format!("lacks migrations [{last}]")),
        "{error:#}"
    );
}
