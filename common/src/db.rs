//! The one way every binary reaches Postgres: connect, then bring the
//! schema up to date.

use std::sync::LazyLock;

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
