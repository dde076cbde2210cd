//! Whether what a process depends on answers: Postgres and the S3 bucket.
//! The web server's `/healthz` and the worker's readiness both ask it.

use sqlx::PgPool;

use crate::storage::Storage;

/// The dependencies a process checks on every probe.
#[derive(Clone, Debug)]
pub struct Dependencies {
    pub pool: PgPool,
    pub storage: Storage,
}

impl Dependencies {
    /// The names of those that do not answer now (`postgres`, `s3`);
    /// empty when all do. Each failure is logged with its error.
    pub async fn down(&self) -> Vec<&'static str> {
        let db = sqlx::query_scalar!("select 1 as \"one!\"")
            .fetch_one(&self.pool)
            .await;
        let s3 = self.storage.health().await;
        let mut down = Vec::new();
        if let Err(e) = db {
            tracing::warn!(error = %e, "health: Postgres is down");
            down.push("postgres");
        }
        if let Err(e) = s3 {
            tracing::warn!(error = %e, "health: S3 is down");
            down.push("s3");
        }
        down
    }
}
