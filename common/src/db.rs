//! The one way every binary reaches Postgres: connect, then bring the
//! schema up to date or wait for its owner to.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The application's own tables (jobs, images, outputs) and its settings of
/// its queues; the queue's schema is the queue crate's ([`queue::MIGRATOR`]).
static APP_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/app");

/// Every migration of Darkroom, the queue's and the application's, in
/// version order: what web and worker apply at start-up, and what tests
/// build their databases with.
///
/// Applying them takes a Postgres advisory lock, so processes starting
/// together apply them once.
pub static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut migrations: Vec<_> = queue::MIGRATOR
        .iter()
        .chain(APP_MIGRATIONS.iter())
        .cloned()
        .collect();
    migrations.sort_by_key(|m| m.version);
    Migrator {
        migrations: migrations.into(),
        ..Migrator::DEFAULT
    }
});

/// Connects a pool of up to `max_connections` to `url` and applies every
/// migration, the queue's and the app's. `url` is `DATABASE_URL`, named in
/// the errors.
pub async fn connect_and_migrate(
    url: Option<&str>,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    queue::connect(url, max_connections, &MIGRATOR).await
}

/// Who brings the schema up to date when a process starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Schema {
    /// This process applies every migration: its role owns the schema.
    #[default]
    Apply,
    /// Another process (the web server) applies them and sets up the
    /// queues; this one, whose role may not change the schema, waits for
    /// them.
    Wait,
}

/// How long a [`Schema::Wait`] process waits for the schema's owner, which
/// a deployment usually starts at the same time.
pub const OWNER_PATIENCE: Duration = Duration::from_secs(120);

/// Connects a pool of up to `max_connections` to `url`, applying every
/// migration or waiting for them as `schema` says.
pub async fn connect(
    url: Option<&str>,
    max_connections: u32,
    schema: Schema,
) -> anyhow::Result<PgPool> {
    match schema {
        Schema::Apply => connect_and_migrate(url, max_connections).await,
        Schema::Wait => queue::connect_migrated(url, max_connections, &MIGRATOR, OWNER_PATIENCE)
            .await
            .context("waiting for the web server to migrate the database"),
    }
}

/// Grants `role` what a worker uses and nothing else (see the migration
/// that defines `darkroom_grant_worker`), for workers given a role of their
/// own. Run by the schema's owner after migrating; granting again is
/// harmless.
pub async fn grant_worker(pool: &PgPool, role: &str) -> anyhow::Result<()> {
    sqlx::query!("select from darkroom_grant_worker($1)", role)
        .execute(pool)
        .await
        .with_context(|| {
            format!("granting the workers' role {role:?} what they use (does the role exist?)")
        })?;
    Ok(())
}

/// Grants `role` the view `queue_backlog` and nothing else, for an
/// autoscaler that reads the request queue's backlog (KEDA's PostgreSQL
/// scaler). Run by the schema's owner after migrating; granting again is
/// harmless.
pub async fn grant_scaler(pool: &PgPool, role: &str) -> anyhow::Result<()> {
    sqlx::query!("select from queue_grant_backlog($1)", role)
        .execute(pool)
        .await
        .with_context(|| {
            format!("granting the scaler's role {role:?} the backlog (does the role exist?)")
        })?;
    Ok(())
}
