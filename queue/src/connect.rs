//! Connecting a service to its database.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

/// Connects a pool of up to `max_connections` to `url` and applies
/// `migrator`'s migrations (the queue's, or an app's that include them).
/// `url` is `DATABASE_URL`, named in the errors.
///
/// A pooled connection is not pinged before each use (sqlx's default):
/// each ping is a round trip and an empty transaction of its own, which
/// for a queue's one-statement operations doubles Postgres' transactions.
/// A connection that died while idle fails its next statement instead,
/// which is dropped from the pool, and callers retry, as they do for any
/// outage.
pub async fn connect(
    url: Option<&str>,
    max_connections: u32,
    migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    let url = url.context(
        "DATABASE_URL is not set: export DATABASE_URL=postgres://user:pass@host:5432/db \
         or pass --database-url",
    )?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .connect(url)
        .await
        .context("cannot connect to Postgres at DATABASE_URL (is it running and reachable?)")?;
    migrator
        .run(&pool)
        .await
        .context("applying database migrations")?;
    Ok(pool)
}
