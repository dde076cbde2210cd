//! The worker's side of a child: starting it with the share of the host it
//! was admitted with, and reading what it wrote once it exits in time.

use std::fs::File;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Child;

use common::Limits;
use common::recipe::Op;

use super::SUBCOMMAND;
use super::error::{RunError, exit_error};
use super::original::Original;
use super::protocol::{Processed, Task, parse_reply};
use crate::sandbox::{Sandbox, check::Report};

/// How images are processed: by which program, within which deadline.
#[derive(Clone, Debug)]
pub struct Isolation {
    /// The `darkroom-worker` binary (by default the running one).
    pub program: PathBuf,
    /// Longest one image may take.
    pub deadline: Duration,
    /// Whether children sandbox themselves.
    pub sandbox: Sandbox,
}

/// What one image's child gets of its worker's host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// Memory ceiling, in bytes.
    pub memory: u64,
    /// CPU niceness, 0 (as the worker) to 19 (only what others leave).
    pub nice: u8,
}

impl Share {
    /// `memory` bytes at the worker's own priority.
    pub fn memory(memory: u64) -> Self {
        Self { memory, nice: 0 }
    }
}

impl Isolation {
    /// Runs `ops` on `input` in a child given `share`.
    pub async fn run(
        &self,
        input: Original,
        ops: &[Op],
        limits: &Limits,
        share: Share,
    ) -> Result<Processed, RunError> {
        let task = serde_json::to_string(&Task {
            ops: ops.to_vec(),
            limits: *limits,
            default_format: None,
        })
        .expect("tasks serialise");
        let stdin = input
            .rewound()
            .and_then(File::try_clone)
            .map_err(|e| self.start_error(e))?;
        let child = self
            .command(share.memory)
            .arg("--nice")
            .arg(share.nice.to_string())
            .arg("--task")
            .arg(task)
            .stdin(stdin)
            .spawn()
            .map_err(|e| self.start_error(e))?;
        parse_reply(&self.stdout_of(child, share.memory).await?)
    }

    /// Starts a child as a worker does, asking it to try, from inside its
    /// sandbox, each way out; what got out is in [`Report::escaped`].
    /// Fails when the child cannot sandbox itself.
    pub async fn check_sandbox(&self) -> Result<Report, RunError> {
        let child = self
            .command(CHECK_MEMORY)
            .arg("--check-sandbox")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| self.start_error(e))?;
        let stdout = self.stdout_of(child, CHECK_MEMORY).await?;
        serde_json::from_slice(&stdout)
            .map_err(|e| RunError::Crashed(format!("its sandbox report was garbled: {e}")))
    }

    /// What `child`, limited to `memory` bytes, wrote, once it exited well
    /// within the deadline.
    async fn stdout_of(&self, child: Child, memory: u64) -> Result<Vec<u8>, RunError> {
        let output = match tokio::time::timeout(self.deadline, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(RunError::Crashed(format!("lost the engine process: {e}"))),
            Err(_) => return Err(RunError::Deadline(self.deadline)),
        };
        if !output.status.success() {
            return Err(exit_error(&output.status, &output.stderr, memory));
        }
        Ok(output.stdout)
    }

    /// A child limited to `memory` bytes, its output piped back. It gets
    /// none of the worker's environment, where the worker's secrets are:
    /// it reads no variable.
    fn command(&self, memory: u64) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .env_clear()
            .arg(SUBCOMMAND)
            .arg("--memory")
            .arg(memory.to_string())
            .arg("--parent")
            .arg(std::process::id().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropping the run at the deadline kills the child.
            .kill_on_drop(true);
        if self.sandbox == Sandbox::Off {
            command.args(["--sandbox", "off"]);
        }
        command
    }

    fn start_error(&self, error: std::io::Error) -> RunError {
        RunError::Start {
            program: self.program.display().to_string(),
            error,
        }
    }
}

/// The memory ceiling of a sandbox check, which holds no image.
const CHECK_MEMORY: u64 = 256 << 20;
