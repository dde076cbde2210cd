//! Job webhooks: a job may name a URL that gets its `image.failed` and
//! `job.done` events. Events are published to the `darkroom.events` topic
//! (tag topic; each event tagged with its job's id) in the transaction that
//! applies the responses behind them; a job's webhook is an HTTP
//! subscription of that topic, tagged with the job's id, signed with a
//! secret given once when the job is made, and allowed only to public
//! addresses unless `DARKROOM_WEBHOOK_ALLOW_PRIVATE` says otherwise. Any
//! web instance's topic pusher delivers it, with CMQ's exponential retries
//! capped at 16 tries, its endpoint given at most 2 of the pusher's slots
//! and parked when it keeps failing, so that an anonymous job's webhook
//! aimed at an address that never answers delays no one else's.
//!
//! Anything else may subscribe to the topic too (a queue with no tags gets
//! every job's events).

use common::protocol::{EVENTS_TOPIC, OutputState};
use common::recipe::Recipe;
use queue::{Publication, SubscriptionSpec, Topics};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// The name of job `job`'s webhook subscription.
pub fn subscription(job: Uuid) -> String {
    format!("job-{job}")
}

/// Checks a webhook URL a client gave: http(s), and unless `allow_private`,
/// not aimed at a private, loopback or link-local address (names are
/// checked again each time they are resolved).
pub fn check_url(url: &str, allow_private: bool) -> AppResult<SubscriptionSpec> {
    let mut spec = SubscriptionSpec::http(url);
    spec.public_only = !allow_private;
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
    if parsed.is_none() || url.len() > 2048 {
        return Err(AppError::BadRequest(
            "`webhook` must be an http:// or https:// URL of at most 2048 characters".into(),
        ));
    }
    if spec.public_only && !queue::topic_public_host(url) {
        return Err(AppError::BadRequest(
            "`webhook` must point at a public address, not a private, loopback or link-local one"
                .into(),
        ));
    }
    Ok(spec)
}

/// Subscribes job `job`'s webhook (on the caller's connection, with the
/// job's own row); returns the secret its deliveries are signed with.
pub async fn subscribe(
    conn: &mut PgConnection,
    topics: &Topics,
    job: Uuid,
    mut spec: SubscriptionSpec,
) -> queue::Result<String> {
    let secret = crate::auth::new_token().0;
    spec.tags = vec![job.to_string()];
    spec.secret = Some(secret.clone());
    topics
        .subscribe_in(conn, EVENTS_TOPIC, &subscription(job), &spec)
        .await?;
    Ok(secret)
}

/// What `moved` tells subscribers: the outputs that failed, and the jobs
/// (once each) that may have ended. "Before" previews are no outputs of the
/// job's recipes: they tell nothing, or a job would end twice.
fn telling(moved: &[Moved]) -> (Vec<&Moved>, Vec<Uuid>) {
    let results = || moved.iter().filter(|m| m.recipe != Recipe::BEFORE);
    let failed = results()
        .filter(|m| m.state == OutputState::Failed)
        .collect();
    let mut jobs: Vec<Uuid> = results()
        .filter(|m| m.state.is_final())
        .map(|m| m.job)
        .collect();
    jobs.sort();
    jobs.dedup();
    (failed, jobs)
}

/// An output a response moved.
pub struct Moved {
    pub job: Uuid,
    pub image: Uuid,
    pub recipe: String,
    pub state: OutputState,
}

/// Publishes the events of `moved` in the caller's transaction: an
/// `image.failed` per output that failed, and a `job.done` per job none of
/// whose outputs is still to be made.
pub async fn publish(
    conn: &mut PgConnection,
    topics: &Topics,
    moved: &[Moved],
) -> anyhow::Result<()> {
    let (failed, jobs) = telling(moved);
    let mut events: Vec<Publication> = failed
        .iter()
        .map(|m| {
            let body = json!({
                "event": "image.failed",
                "job": m.job,
                "image": m.image,
                "recipe": m.recipe,
            });
            Publication::new(body.to_string()).tagged(&[&m.job.to_string()])
        })
        .collect();
    if !jobs.is_empty() {
        let done = sqlx::query_file!("sql/jobs_ended.sql", &jobs, Recipe::BEFORE)
            .fetch_all(&mut *conn)
            .await?;
        events.extend(done.into_iter().map(|d| {
            let body = json!({
                "event": "job.done",
                "job": d.job,
                "counts": {"total": d.done + d.failed, "done": d.done, "failed": d.failed},
            });
            Publication::new(body.to_string()).tagged(&[&d.job.to_string()])
        }));
    }
    if events.is_empty() {
        return Ok(());
    }
    match topics.publish_in(conn, EVENTS_TOPIC, &events).await {
        // An operator deleted the topic: the outputs still move on (it is
        // declared again when a web server starts).
        Err(queue::Error::TopicNotFound(_)) => {
            tracing::warn!(
                topic = EVENTS_TOPIC,
                "events topic is gone; events not published"
            );
            Ok(())
        }
        other => Ok(other.map(drop)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(job: Uuid, recipe: &str, state: OutputState) -> Moved {
        Moved {
            job,
            image: Uuid::new_v4(),
            recipe: recipe.to_owned(),
            state,
        }
    }

    #[test]
    fn a_before_preview_neither_fails_an_image_nor_ends_a_job() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let all = [
            moved(a, "thumb", OutputState::Failed),
            moved(a, "thumb", OutputState::Done),
            moved(a, Recipe::BEFORE, OutputState::Failed),
            moved(b, Recipe::BEFORE, OutputState::Done),
            moved(b, "thumb", OutputState::Processing),
        ];
        let (failed, jobs) = telling(&all);
        let failed: Vec<&str> = failed.iter().map(|m| m.recipe.as_str()).collect();
        assert_eq!(failed, ["thumb"]);
        assert_eq!(jobs, [a]);
    }
}
