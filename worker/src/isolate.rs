//! The engine in a child process per image.
//!
//! A worker holds several users' messages at once, so no image may take the
//! others down with it. Each image is processed by a child process (this
//! same binary, `darkroom-worker engine`) that:
//! - is killed when it runs past the processing deadline, so the deadline is
//!   enforced rather than requested: no op, codec bug or hostile file
//!   outlives it;
//! - runs under a memory ceiling (`RLIMIT_DATA`, the memory the worker
//!   admitted it with): an allocation past it fails in that child alone,
//!   instead of the kernel's OOM killer choosing among processes that hold
//!   other users' messages. It is also the OOM killer's first choice
//!   (`oom_score_adj` 1000);
//! - dies with its worker (`PR_SET_PDEATHSIG`), so a killed worker leaves no
//!   orphan burning CPU;
//! - starts with an empty environment, and sandboxes itself before it reads
//!   its task or image (see `sandbox`): a codec exploited by a crafted file
//!   finds no secret, no network and no way to start a program.
//!
//! The alternative, a deadline checked between and inside ops, would need
//! every codec and op of the `image` crate to poll it, could not stop a codec
//! stuck in a loop and could not bound memory. A child costs about a
//! millisecond to start, next to tens of milliseconds for even a thumbnail.
//!
//! The child takes its JSON [`Task`] as an argument and the image as its
//! stdin, an [`Original`]: a memory file the worker wrote as the download
//! arrived, so the image is not gathered into one buffer first nor pushed
//! through a pipe. It writes a one-line JSON [`Reply`] and then the encoded
//! output to stdout.

use std::fs::File;
use std::io::{BufReader, Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use nix::sys::memfd::{MFdFlags, memfd_create};
use serde::{Deserialize, Serialize};
use tokio::process::Child;

use common::Limits;
use common::recipe::{OP_NAMES, Op, OutputFormat};

use crate::engine::{self, Output};
use crate::sandbox::{self, Sandbox, check::Report};

/// The subcommand a child runs.
pub const SUBCOMMAND: &str = "engine";

/// An original image held for the engine: a memory file (`memfd`) written
/// as its download arrives, which becomes its child's stdin. The child reads
/// it in one call, as `apply` reads a file, where a pipe would take the
/// image in turns of 64 KiB, each a wake-up of both processes.
#[derive(Debug)]
pub struct Original {
    file: File,
    len: u64,
}

impl Original {
    /// An empty original, to [`write`](Self::write) into.
    pub fn new() -> std::io::Result<Self> {
        let fd = memfd_create("darkroom-original", MFdFlags::MFD_CLOEXEC)?;
        Ok(Self {
            file: File::from(fd),
            len: 0,
        })
    }

    /// An original holding `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> std::io::Result<Self> {
        let mut original = Self::new()?;
        original.write(bytes)?;
        Ok(original)
    }

    /// Appends `chunk`. A plain write: the file is memory, so this is a copy
    /// that never waits on a device.
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk)?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The image from its start, for reading headers.
    pub fn reader(&self) -> std::io::Result<BufReader<&File>> {
        Ok(BufReader::new(self.rewound()?))
    }

    /// The file, its offset at the start. The offset is shared by every
    /// handle on the file, the child's stdin included.
    fn rewound(&self) -> std::io::Result<&File> {
        let mut file = &self.file;
        file.rewind()?;
        Ok(file)
    }
}

/// What a child is asked to do.
#[derive(Serialize, Deserialize)]
struct Task {
    ops: Vec<Op>,
    limits: Limits,
    default_format: Option<OutputFormat>,
}

/// What a child answers.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
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

/// Why a child did not produce an image.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The engine refused the image or the recipe (permanent).
    #[error("{0}")]
    Engine(String),
    /// The engine panicked on the image (permanent, and a bug of ours).
    #[error("{0}")]
    Panicked(String),
    #[error(
        "processing took longer than the {}-second deadline (DARKROOM_WORKER_DEADLINE) and was \
         stopped; use a smaller image or a lighter recipe",
        .0.as_secs_f64()
    )]
    Deadline(Duration),
    #[error(
        "processing needed more than the {} MiB it was given (DARKROOM_WORKER_MAX_MEMORY) and \
         was stopped",
        .0 >> 20
    )]
    OutOfMemory(u64),
    #[error("the image engine crashed on this file: {0}")]
    Crashed(String),
    /// No child could be started: a problem of this host, not the image.
    #[error("cannot start the image engine ({program}): {error}")]
    Start {
        program: String,
        error: std::io::Error,
    },
}

/// A processed image and what the child used.
#[derive(Debug)]
pub struct Processed {
    pub output: Output,
    pub peak_memory: u64,
}

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

fn exit_error(status: &std::process::ExitStatus, stderr: &[u8], memory: u64) -> RunError {
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(stderr);
    // Rust aborts when an allocation fails, saying so on stderr.
    if stderr.contains("memory allocation of") {
        return RunError::OutOfMemory(memory);
    }
    let last_line = stderr.lines().last().unwrap_or("").trim();
    let what = match status.signal() {
        Some(9) => "it was killed (SIGKILL), likely by the kernel's OOM killer".to_owned(),
        Some(signal) => format!("it died of signal {signal}"),
        None => format!("it exited with {status}"),
    };
    if last_line.is_empty() {
        RunError::Crashed(what)
    } else {
        RunError::Crashed(format!("{what}: {last_line}"))
    }
}

fn parse_reply(stdout: &[u8]) -> Result<Processed, RunError> {
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

/// How a child was started: `--memory BYTES --parent PID [--nice N]
/// [--sandbox off]`.
#[derive(Clone, Copy, Debug)]
pub struct Confinement {
    pub memory: u64,
    pub nice: u8,
    pub parent: u32,
    pub sandbox: Sandbox,
}

impl Confinement {
    /// Ties the child to its parent, caps its memory, lowers its priority,
    /// then sandboxes it.
    fn enter(&self) -> Result<sandbox::Enforced, String> {
        confine(self.memory, self.parent)?;
        // Before any thread starts: a thread's niceness is its own, and
        // those the codecs start take their creator's.
        rustix::process::setpriority_process(None, i32::from(self.nice))
            .map_err(|e| format!("setpriority: {e}"))?;
        sandbox::enter(self.sandbox)
    }
}

/// The child's side: `darkroom-worker engine ... --task JSON`, the image on
/// stdin.
pub fn child_main(confinement: &Confinement, task: &str) -> ExitCode {
    if let Err(e) = confinement.enter() {
        eprintln!("engine child: {e}");
        return ExitCode::FAILURE;
    }
    let task: Task = match serde_json::from_str(task) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("engine child: bad task: {e}");
            return ExitCode::FAILURE;
        }
    };
    let input = match read_input() {
        Ok(input) => input,
        Err(e) => {
            eprintln!("engine child: reading the image: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (reply, body) = match engine::process(&input, &task.ops, &task.limits, task.default_format)
    {
        Ok(out) => (
            Reply::Done {
                width: out.width,
                height: out.height,
                format: out.format,
                timings: out
                    .timings
                    .iter()
                    .map(|(step, took)| ((*step).to_owned(), took.as_secs_f64()))
                    .collect(),
                peak_memory: peak_memory(),
            },
            out.bytes,
        ),
        Err(e @ engine::EngineError::Panicked(_)) => (
            Reply::Panicked {
                error: e.to_string(),
            },
            Vec::new(),
        ),
        Err(e) => (
            Reply::Failed {
                error: e.to_string(),
            },
            Vec::new(),
        ),
    };
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, &reply)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.write_all(&body))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine child: writing the result: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The child's side of [`Isolation::check_sandbox`]: `darkroom-worker
/// engine ... --check-sandbox`; writes its [`Report`] as JSON.
pub fn check_sandbox_main(confinement: &Confinement) -> ExitCode {
    let enforced = match confinement.enter() {
        Ok(enforced) => enforced,
        Err(e) => {
            eprintln!("engine child: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = sandbox::check::report(enforced);
    match serde_json::to_writer(std::io::stdout().lock(), &report) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine child: writing the sandbox report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the image on stdin: in one read of its size when it is a file (a
/// worker's [`Original`]), to its end when it is a pipe (run by hand).
fn read_input() -> std::io::Result<Vec<u8>> {
    let stdin = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let size = stdin.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    (&stdin).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Ties the child to its parent and caps its memory.
fn confine(memory: u64, parent: u32) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    use nix::sys::signal::Signal;
    // Delivered when the thread that started us exits: the worker starts
    // children from its runtime's threads, which live as long as it does.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("pdeathsig: {e}"))?;
    // The parent may have died before the line above took effect.
    if std::os::unix::process::parent_id() != parent {
        return Err("the worker that started this process is gone".into());
    }
    // Best effort: raising one's own score needs no privilege, but /proc
    // may be missing in odd sandboxes.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    setrlimit(Resource::RLIMIT_DATA, memory, memory).map_err(|e| format!("RLIMIT_DATA: {e}"))?;
    Ok(())
}

/// This process's peak memory of its own, in bytes (0 if unknown): the peak
/// resident set (`VmHWM`) less the pages of files it maps (its code, which
/// every child shares) as they are at the end.
fn peak_memory() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    let kb = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    kb("VmHWM:").saturating_sub(kb("RssFile:") + kb("RssShmem:")) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

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
