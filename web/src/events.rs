//! Which jobs just changed, told to every web process: the response consumer
//! announces jobs whose outputs moved, one LISTEN connection per process
//! hears it, and progress streams (`http::events`) wake up and read what is
//! new. Several web instances can serve one job's stream and consume its
//! responses in any combination.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(crate) const CHANNEL: &str = "darkroom_jobs";

/// A process's view of job changes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JobEvents {
    tx: broadcast::Sender<Uuid>,
}

impl Default for JobEvents {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl JobEvents {
    /// Changed job ids, as they are heard. A receiver that falls behind
    /// gets `Lagged` and should simply look again.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.tx.subscribe()
    }

    /// Tells every web process that these jobs changed.
    pub async fn announce(db: impl sqlx::PgExecutor<'_>, jobs: &[Uuid]) -> sqlx::Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "select pg_notify($1, j::text) from unnest($2::uuid[]) as j",
            CHANNEL,
            jobs
        )
        .fetch_all(db)
        .await?;
        Ok(())
    }

    /// Hears announcements until `shutdown`, reconnecting as needed. Streams
    /// also look on their own every few seconds, so a missed one only delays.
    pub async fn listen(self, pool: PgPool, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(CHANNEL).await {
                    Ok(()) => l,
                    Err(e) => {
                        tracing::debug!(error = %e, "LISTEN for job events failed; retrying");
                        pause(&shutdown).await;
                        continue;
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, "job events listener cannot connect; retrying");
                    pause(&shutdown).await;
                    continue;
                }
            };
            loop {
                let heard = tokio::select! {
                    heard = listener.try_recv() => heard,
                    () = shutdown.cancelled() => return,
                };
                match heard {
                    Ok(Some(n)) => {
                        if let Ok(job) = n.payload().parse() {
                            // No subscriber is not an error.
                            let _ = self.tx.send(job);
                        }
                    }
                    // Reconnected by the listener itself.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "job events listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
        () = shutdown.cancelled() => {}
    }
}
