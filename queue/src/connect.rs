//! Connecting a service to its database.

use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use tokio::time::Instant;

/// How often a process waiting for the schema's owner looks again.
const RECHECK: Duration = Duration::from_millis(500);

/// Connects a pool of up to `max_connections` to `url` and applies
/// `migrator`'s migrations (the queue's, or an app's that include them).
/// `url` is `DATABASE_URL`, named in the errors.
pub async fn connect(
    url: Option<&str>,
    max_connections: u32,
    migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    let pool = open(url, max_connections).await?;
    migrator
        .run(&pool)
        .await
        .context("applying database migrations")?;
    Ok(pool)
}

/// Connects as [`connect`] does, for a role that may not change the schema:
/// rather than apply `migrator`'s migrations, waits up to `patience` for
/// another process (the schema's owner) to have applied them all.
pub async fn connect_migrated(
    url: Option<&str>,
    max_connections: u32,
    migrator: &Migrator,
    patience: Duration,
) -> anyhow::Result<PgPool> {
    let pool = open(url, max_connections).await?;
    let deadline = Instant::now() + patience;
    loop {
        let missing = missing_migrations(&pool, migrator).await;
        match missing {
            Ok(missing) if missing.is_empty() => return Ok(pool),
            Ok(missing) if Instant::now() >= deadline => bail!(
                "after {patience:?} the database still lacks migrations {missing:?}; they are \
                 applied by a process that owns the schema"
            ),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).context(format!(
                    "after {patience:?} this role still cannot read which migrations the \
                     database has (_sqlx_migrations): has the schema's owner migrated it and \
                     granted this role what it uses?"
                ));
            }
            _ => tokio::time::sleep(RECHECK).await,
        }
    }
}

/// The versions of `migrator` not applied to the database yet.
async fn missing_migrations(pool: &PgPool, migrator: &Migrator) -> sqlx::Result<Vec<i64>> {
    // Not `query_scalar!`: sqlx's own table is not in the database the
    // offline query data is prepared from.
    let applied: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(pool)
            .await?;
    Ok(migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

/// A pool of up to `max_connections` to `url`.
///
/// A pooled connection is not pinged before each use (sqlx's default):
/// each ping is a round trip and an empty transaction of its own, which
/// for a queue's one-statement operations doubles Postgres' transactions.
/// A connection that died while idle fails its next statement instead,
/// which is dropped from the pool, and callers retry, as they do for any
/// outage.
async fn open(url: Option<&str>, max_connections: u32) -> anyhow::Result<PgPool> {
    let url = url.context(
        "DATABASE_URL is not set: export DATABASE_URL=postgres://user:pass@host:5432/db \
         or pass --database-url",
    )?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .connect(url)
        .await
        .context("cannot connect to Postgres at DATABASE_URL (is it running and reachable?)")
}
