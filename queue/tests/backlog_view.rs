//! `queue_backlog`, the view autoscalers read (KEDA's PostgreSQL scaler),
//! and the grant that lets a role read it and nothing else.

mod common;

use std::time::Duration;

use common::{LOCK, batch, delayed, exec, queue};
use sqlx::PgPool;

/// Visible and in flight.
async fn backlog(pool: &PgPool, name: &str) -> (i64, i64) {
    sqlx::query_as("select visible, in_flight from queue_backlog where name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn the_backlog_counts_waiting_and_leased_messages_as_stats_does(pool: PgPool) {
    let q = queue(&pool, "jobs").await;
    queue(&pool, "idle").await;
    q.send_batch(&batch(5)).await.unwrap();
    q.send_batch(&[delayed("later", Duration::from_secs(600))])
        .await
        .unwrap();
    q.receive(2, LOCK).await.unwrap();

    let stats = q.stats().await.unwrap();
    assert_eq!(
        backlog(&pool, "jobs").await,
        (3, 2),
        "delayed neither waits nor is worked on"
    );
    assert_eq!(
        backlog(&pool, "jobs").await,
        (stats.visible, stats.in_flight)
    );
    assert_eq!(
        backlog(&pool, "idle").await,
        (0, 0),
        "a queue with no message shows 0"
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_role_granted_the_backlog_reads_it_and_nothing_else(pool: PgPool) {
    let q = queue(&pool, "jobs").await;
    q.send("private").await.unwrap();
    exec(
        &pool,
        "do $$ begin create role darkroom_scaler_test nologin; \
         exception when duplicate_object then null; end $$",
    )
    .await;
    exec(&pool, "grant darkroom_scaler_test to current_user").await;
    exec(&pool, "select queue_grant_backlog('darkroom_scaler_test')").await;

    let mut scaler = pool.acquire().await.unwrap();
    sqlx::raw_sql("set role darkroom_scaler_test")
        .execute(&mut *scaler)
        .await
        .unwrap();
    let visible: i64 = sqlx::query_scalar("select visible from queue_backlog where name = 'jobs'")
        .fetch_one(&mut *scaler)
        .await
        .unwrap();
    assert_eq!(visible, 1);
    for statement in [
        "select count(*) from queue_messages",
        "select count(*) from queue_counters",
        "select count(*) from queue_queues",
    ] {
        let refused = sqlx::raw_sql(statement)
            .execute(&mut *scaler)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("permission denied"),
            "{statement}: {refused}"
        );
    }
    sqlx::raw_sql("reset role")
        .execute(&mut *scaler)
        .await
        .unwrap();
}

/// The query of the Kubernetes deployment's KEDA trigger
/// (deploy/kubernetes/overlays/prod/keda.yaml), as written there.
fn scaler_query() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/kubernetes/overlays/prod/keda.yaml"
    );
    let yaml = std::fs::read_to_string(path).unwrap();
    let line = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("query: "))
        .expect("keda.yaml has a trigger query");
    line.trim_matches('"').to_owned()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn the_kubernetes_scaler_query_reads_waiting_and_leased_requests(pool: PgPool) {
    let q = queue(&pool, "darkroom.requests").await;
    q.send_batch(&batch(5)).await.unwrap();
    q.receive(2, LOCK).await.unwrap();
    let work: i64 = sqlx::query_scalar(&scaler_query())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(work, 5, "3 waiting + 2 in hand");
}
