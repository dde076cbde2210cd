//! Messages between web and workers, the queues they travel on, where their
//! objects live in S3, and the states an output goes through.

use std::time::Duration;

use anyhow::Context;
use queue::{QueueAttributes, Routed, Router};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::warn;
use uuid::Uuid;

use crate::recipe::{OutputFormat, Recipe};

/// Receives of one request before it is dead-lettered.
pub const MAX_RECEIVES: u32 = 5;

/// Queue of work for workers: one message per (image, recipe).
pub const REQUEST_QUEUE: &str = "darkroom.requests";
/// Where requests go that kept coming back unfinished (worker crashes,
/// timeouts); the web server marks their outputs failed.
pub const DEAD_REQUEST_QUEUE: &str = "darkroom.requests.dead";
/// Queue of results for web.
pub const RESPONSE_QUEUE: &str = "darkroom.responses";
/// Topic of job events (`image.failed`, `job.done`), tagged with the job's
/// id; jobs' webhooks subscribe to it.
pub const EVENTS_TOPIC: &str = "darkroom.events";

/// Process `recipe` on the original at `source_key`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub job_id: Uuid,
    pub image_id: Uuid,
    pub image_name: String,
    pub recipe: Recipe,
    pub source_key: String,
}

/// What happened to one (image, recipe).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub job_id: Uuid,
    pub image_id: Uuid,
    pub recipe: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    /// A worker has started on it.
    Processing,
    Done {
        width: u32,
        height: u32,
        bytes: u64,
        format: OutputFormat,
        key: String,
    },
    /// Permanent failure: retrying would not help.
    Failed { error: String },
}

/// Where an output stands, as the web server records it. States only move
/// up this ladder (`queued < processing < failed < done`), so a response
/// applied twice, or a late `processing` after `done`, changes nothing; a
/// redriven request that then succeeds turns a failed output done.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    sqlx::Type,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum OutputState {
    Queued,
    Processing,
    Failed,
    Done,
}

impl OutputState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputState::Queued => "queued",
            OutputState::Processing => "processing",
            OutputState::Failed => "failed",
            OutputState::Done => "done",
        }
    }

    /// The states an output may move to this one from.
    pub fn below(self) -> Vec<OutputState> {
        [
            OutputState::Queued,
            OutputState::Processing,
            OutputState::Failed,
            OutputState::Done,
        ]
        .into_iter()
        .filter(|s| *s < self)
        .collect()
    }

    /// Done or failed: nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, OutputState::Failed | OutputState::Done)
    }
}

impl Outcome {
    /// The state this outcome puts an output in.
    pub fn state(&self) -> OutputState {
        match self {
            Outcome::Processing => OutputState::Processing,
            Outcome::Done { .. } => OutputState::Done,
            Outcome::Failed { .. } => OutputState::Failed,
        }
    }
}

/// Creates the job events topic unless it exists (in the control database).
pub async fn declare_topics(router: &Router) -> queue::Result<queue::Topics> {
    let topics = queue::Topics::new(router.control().clone());
    // An operator's settings of the topic stay.
    topics
        .ensure_topic(EVENTS_TOPIC, &queue::TopicSettings::default())
        .await?;
    Ok(topics)
}

/// Creates the request queue (with its dead letter queue) and the response
/// queue unless they exist.
///
/// None of them drops unprocessed work: they keep messages until they are
/// handled. An operator may give the request queue a retention; its expired
/// requests then move to the dead letter queue, and the web server fails
/// their outputs as expired. Responses and dead letters are the record of
/// what happened, so a retention set on them is taken off again here.
pub async fn declare_queues(router: &Router) -> queue::Result<(Routed, Routed)> {
    let keep = QueueAttributes {
        retention: None,
        ..Default::default()
    };
    let dead = router.ensure(DEAD_REQUEST_QUEUE, &keep).await?;
    let requests = router
        .ensure(
            REQUEST_QUEUE,
            &QueueAttributes {
                max_receive_count: Some(MAX_RECEIVES),
                dead_letter_queue: Some(DEAD_REQUEST_QUEUE.into()),
                ..keep.clone()
            },
        )
        .await?;
    let responses = router.ensure(RESPONSE_QUEUE, &keep).await?;
    for queue in [&dead, &responses] {
        let attributes = queue.attributes().await?;
        if let Some(retention) = attributes.retention {
            warn!(
                queue = queue.name(),
                ?retention,
                "this queue must keep every message; removing its retention"
            );
            let attributes = QueueAttributes {
                retention: None,
                ..attributes
            };
            router.put(queue.name(), &attributes).await?;
        }
    }
    Ok((requests, responses))
}

/// The worker's queues as the web server declared them, for a worker whose
/// role may not declare them: waits up to `patience` for them to exist.
pub async fn open_queues(router: &Router, patience: Duration) -> anyhow::Result<(Routed, Routed)> {
    let deadline = Instant::now() + patience;
    loop {
        match (
            router.open(REQUEST_QUEUE).await,
            router.open(RESPONSE_QUEUE).await,
        ) {
            (Ok(requests), Ok(responses)) => return Ok((requests, responses)),
            (Err(queue::Error::QueueNotFound(_)), _) | (_, Err(queue::Error::QueueNotFound(_)))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            (Err(e), _) | (_, Err(e)) => {
                return Err(e).context(format!(
                    "opening {REQUEST_QUEUE} and {RESPONSE_QUEUE}, which the web server declares"
                ));
            }
        }
    }
}

/// Where an uploaded original is stored.
pub fn source_key(job_id: Uuid, image_id: Uuid) -> String {
    format!("jobs/{job_id}/originals/{image_id}")
}

/// Where an output is stored. Deterministic, so processing a message twice
/// (after a crash) overwrites one object instead of leaving two.
pub fn output_key(job_id: Uuid, image_id: Uuid, recipe: &str) -> String {
    format!("jobs/{job_id}/outputs/{image_id}/{recipe}")
}
