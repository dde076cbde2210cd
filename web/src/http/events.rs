//! `GET /api/jobs/{id}/events`: live progress as Server-Sent Events.
//!
//! An `output` event for each output whose state changed, carrying its
//! current state, followed by a `job` event with the job's state and counts.
//! Event ids number the changes: a reconnecting browser sends the last id it
//! saw (`Last-Event-ID`) and gets the current state of every output changed
//! since, so nothing is missed (intermediate states of an output changed
//! twice meanwhile are folded into its latest). A new stream first sends
//! every output's current state. The stream wakes
//! when the response consumer of any web instance announces the job (see
//! `crate::events`), and looks on its own every few seconds as well.
//!
//! A stream ends once its job is done (every output done or failed) or
//! expires: the browser then closes it, or, while it still uploads,
//! reconnects and is told what changed since (or, the job gone, is told 404).
//! Streams are capped per job, per client and in all, so a client cannot
//! hold open connections without end; a job that gets no image expires
//! within `DARKROOM_EMPTY_JOB_TTL`, taking its streams with it.

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use common::OutputState;
use futures::Stream;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::JobAccess;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::http::status::{Counts, JobState, OutputRow, OutputView};
use crate::places::{Place, Places};
use crate::rate::Client;

/// How often a stream looks for changes it was not told about.
const FALLBACK_POLL: Duration = Duration::from_secs(3);

/// How soon a browser reconnects to a stream that ended or broke.
const RECONNECT: Duration = Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// The progress streams open in this process, in all, per client and per
/// job.
#[derive(Clone, Debug, Default)]
pub struct Streams {
    total: Places<()>,
    per_client: Places<IpAddr>,
    per_job: Places<Uuid>,
}

/// How many streams may be open at once.
#[derive(Clone, Copy, Debug)]
pub struct StreamCaps {
    pub per_job: usize,
    pub per_client: usize,
    pub total: usize,
}

/// One open stream's places; closing the stream (dropping this) frees them.
pub struct StreamPlace {
    _total: Place<()>,
    _client: Place<IpAddr>,
    _job: Place<Uuid>,
}

impl Streams {
    /// Takes a place for `client`'s stream of `job`, within every cap.
    fn open(&self, job: Uuid, client: IpAddr, caps: StreamCaps) -> AppResult<StreamPlace> {
        let busy = |message: String| AppError::TooManyRequests {
            message,
            retry_after: Duration::from_secs(5),
        };
        let total = self.total.take((), caps.total).ok_or_else(|| {
            busy(
                "the server has as many progress streams open as it allows; try again shortly"
                    .into(),
            )
        })?;
        let by_client = self.per_client.take(client, caps.per_client).ok_or_else(|| {
            busy(format!(
                "your address already has {} progress streams open (DARKROOM_MAX_STREAMS_PER_CLIENT); \
                 close a tab that follows a job",
                caps.per_client
            ))
        })?;
        let of_job = self.per_job.take(job, caps.per_job).ok_or_else(|| {
            busy(format!(
                "this job already has {} progress streams open; close a tab that follows it",
                caps.per_job
            ))
        })?;
        Ok(StreamPlace {
            _total: total,
            _client: by_client,
            _job: of_job,
        })
    }
}

#[derive(Serialize)]
struct OutputEvent {
    image: Uuid,
    name: String,
    #[serde(flatten)]
    output: OutputView,
}

#[utoipa::path(get, path = "/api/jobs/{id}/events", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    security(("job_token" = []), ("signed_link" = [])),
    responses(
        (status = 200, description = "Server-Sent Events: `output` (an output's current state, as in the job's `images[].outputs[]` plus `image` and `name`) and `job` (`state`, `counts`)", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
        (status = 429, description = "Too many streams open on this job or in all (Retry-After)", body = ErrorBody),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    access: JobAccess,
    Client(client): Client,
    headers: HeaderMap,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id = access.job_id;
    let mut after: i64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let place = state
        .streams
        .open(id, client, state.settings.stream_caps())?;
    let expires = until_expiry(&state.pool, id).await?;
    let mut announced = state.job_events.subscribe();
    let pool = state.pool.clone();
    let stream = async_stream::stream! {
        // Held as long as the stream lives: the client going away drops it.
        let _place = place;
        yield Ok(Event::default().retry(RECONNECT));
        let mut first = true;
        loop {
            match changes(&pool, id, after).await {
                Ok((events, counts)) => {
                    let done = counts.job_state() == JobState::Done;
                    if !events.is_empty() || first || done {
                        for (event, data) in events {
                            after = event;
                            yield Ok(Event::default()
                                .id(event.to_string())
                                .event("output")
                                .json_data(data)
                                .expect("output events serialise"));
                        }
                        let job = JobEvent { state: counts.job_state(), counts };
                        yield Ok(Event::default()
                            .event("job")
                            .json_data(job)
                            .expect("job events serialise"));
                    }
                    if done {
                        break;
                    }
                    first = false;
                }
                Err(e) => tracing::warn!(job = %id, error = %e, "reading job events failed; retrying"),
            }
            if tokio::time::timeout_at(expires, news_of(&mut announced, id)).await.is_err() {
                break;
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// When `job` expires, as an instant of this process's clock.
async fn until_expiry(pool: &PgPool, job: Uuid) -> AppResult<Instant> {
    let left = sqlx::query_scalar!(
        r#"select greatest(extract(epoch from expires_at - now()), 0)::float8 as "left!" from jobs where id = $1"#,
        job
    )
    .fetch_optional(pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(Instant::now() + Duration::from_secs_f64(left))
}

/// Waits for `job` to be announced, or for the fallback poll.
async fn news_of(announced: &mut broadcast::Receiver<Uuid>, job: Uuid) {
    let _ = tokio::time::timeout(FALLBACK_POLL, async {
        loop {
            match announced.recv().await {
                Ok(j) if j == job => return,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
}

/// The `job` event: the job's state and counts after a change.
#[derive(Serialize)]
struct JobEvent {
    state: JobState,
    counts: Counts,
}

/// Outputs of the job changed after event `after`, oldest change first, and
/// the job's counts.
async fn changes(
    pool: &PgPool,
    job: Uuid,
    after: i64,
) -> sqlx::Result<(Vec<(i64, OutputEvent)>, Counts)> {
    let rows = sqlx::query_file_as!(OutputRow, "sql/output_events_after.sql", job, after)
        .fetch_all(pool)
        .await?;
    let counts = Counts::of_job(pool, job).await?;
    let events = rows
        .into_iter()
        .filter_map(|r| {
            let (event, image, name) = (r.event?, r.image_id, r.name.clone());
            let output = r.view(job)?;
            Some((
                event,
                OutputEvent {
                    image,
                    name,
                    output,
                },
            ))
        })
        .collect();
    Ok((events, counts))
}
