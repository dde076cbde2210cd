//! Messages between web and workers, and where their objects live in S3.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::recipe::{OutputFormat, Recipe};

/// Queue of work for workers: one message per (image, recipe).
pub const REQUEST_QUEUE: &str = "darkroom.requests";
/// Where requests go that kept coming back unfinished (worker crashes,
/// timeouts); the web server marks their outputs failed.
pub const DEAD_REQUEST_QUEUE: &str = "darkroom.requests.dead";
/// Queue of results for web.
pub const RESPONSE_QUEUE: &str = "darkroom.responses";

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

/// Where an uploaded original is stored.
pub fn source_key(job_id: Uuid, image_id: Uuid) -> String {
    format!("jobs/{job_id}/originals/{image_id}")
}

/// Where an output is stored. Deterministic, so processing a message twice
/// (after a crash) overwrites one object instead of leaving two.
pub fn output_key(job_id: Uuid, image_id: Uuid, recipe: &str) -> String {
    format!("jobs/{job_id}/outputs/{image_id}/{recipe}")
}
