//! What passes between a worker and its child: the JSON task given as an
//! argument, and the one-line JSON reply the child writes before the encoded
//! image. Both sides share these types so they cannot drift apart.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use common::Limits;
use common::recipe::{OP_NAMES, Op, OutputFormat};

use super::error::RunError;
use crate::engine::Output;

/// What a child is asked to do.
#[derive(Serialize, Deserialize)]
pub(super) struct Task {
    pub(super) ops: Vec<Op>,
    pub(super) limits: Limits,
    pub(super) default_format: Option<OutputFormat>,
}

/// What a child answers.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Reply {
    Done {
        width: u32,
        height: u32,
        format: OutputFormat,
        timings: Vec<(String, f64)>,
        /// The child's peak memory of its own, in bytes.
        peak_memory: u64,
    },
    Failed {
        error: String,
    },
    /// The engine panicked and caught it: the worker counts these apart.
    Panicked {
        error: String,
    },
}

/// A processed image and what the child used.
#[derive(Debug)]
pub struct Processed {
    pub output: Output,
    pub peak_memory: u64,
}

/// A child's stdout, read as its reply line and the image after it.
pub(super) fn parse_reply(stdout: &[u8]) -> Result<Processed, RunError> {
    let garbled = || RunError::Crashed("its answer was garbled".into());
    let newline = stdout
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(garbled)?;
    let reply: Reply = serde_json::from_slice(&stdout[..newline]).map_err(|_| garbled())?;
    match reply {
        Reply::Failed { error } => Err(RunError::Engine(error)),
        Reply::Panicked { error } => Err(RunError::Panicked(error)),
        Reply::Done {
            width,
            height,
            format,
            timings,
            peak_memory,
        } => Ok(Processed {
            output: Output {
                bytes: stdout[newline + 1..].to_vec(),
                width,
                height,
                format,
                timings: timings
                    .into_iter()
                    .map(|(step, secs)| (step_name(&step), Duration::from_secs_f64(secs)))
                    .collect(),
            },
            peak_memory,
        }),
    }
}

/// Timings are labelled with static names; a child only ever sends these.
fn step_name(step: &str) -> &'static str {
    ["decode", "encode"]
        .into_iter()
        .chain(OP_NAMES.iter().copied())
        .find(|name| *name == step)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine;

    /// The worker counts panics apart from refused files only if the
    /// child's answer keeps them apart.
    #[test]
    fn a_panic_in_the_child_comes_back_as_a_panic_not_a_refusal() {
        let reply = |reply: &Reply| {
            let mut line = serde_json::to_vec(reply).unwrap();
            line.push(b'\n');
            parse_reply(&line).unwrap_err()
        };
        let error = engine::EngineError::Panicked("index out of bounds".into()).to_string();
        let panicked = reply(&Reply::Panicked { error });
        assert!(
            matches!(&panicked, RunError::Panicked(m) if m.contains("internal error")),
            "{panicked:?}"
        );
        let refused = reply(&Reply::Failed {
            error: "image is corrupt".into(),
        });
        assert!(matches!(refused, RunError::Engine(_)), "{refused:?}");
    }
}
