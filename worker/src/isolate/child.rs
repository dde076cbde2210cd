//! The child's side: `darkroom-worker engine ...`. It confines itself before
//! it reads anything a user sent, so a hostile image only ever meets a
//! process already tied to its worker, capped and sandboxed.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use super::protocol::{Reply, Task};
use crate::engine::{self, EngineError, Output};
use crate::sandbox::{self, Sandbox};

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
    let processed = engine::process(&input, &task.ops, &task.limits, task.default_format);
    let (reply, body) = reply_to(processed);
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

/// The reply to write for what the engine made of the image, and the
/// encoded image to write after it (empty when there is none).
fn reply_to(processed: Result<Output, EngineError>) -> (Reply, Vec<u8>) {
    match processed {
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
        Err(e @ EngineError::Panicked(_)) => (
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
    }
}

/// The child's side of [`Isolation::check_sandbox`]: `darkroom-worker
/// engine ... --check-sandbox`; writes its [`Report`] as JSON.
///
/// [`Isolation::check_sandbox`]: super::Isolation::check_sandbox
/// [`Report`]: sandbox::check::Report
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
/// worker's [`Original`](super::Original)), to its end when it is a pipe (run by hand).
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
