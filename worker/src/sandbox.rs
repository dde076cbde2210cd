//! The engine child's sandbox, which it installs on itself before it reads
//! the task or a byte of the image.
//!
//! The child runs C decoders (libjpeg-turbo, libwebp) on untrusted bytes:
//! one memory-safety bug there and a crafted file runs code in the child.
//! That code must find nothing worth having. The worker starts the child
//! with an empty environment (no `DATABASE_URL`, S3 keys, admin token or
//! SQS keys; see `isolate`), and the child then shuts itself in:
//!
//! - **seccomp** (required): a filter refusing, with `EPERM`, the system
//!   calls that reach outside the process: the network (`socket`,
//!   `socketpair`, `connect`, `bind`, `listen`, `accept`, `accept4`), new
//!   programs and processes (`execve`, `execveat`, `fork`, `vfork`, and
//!   `clone` without `CLONE_THREAD`; `clone3`, whose flags a filter cannot
//!   read, says `ENOSYS` so that libc falls back to `clone`), other
//!   processes (`ptrace`, `process_vm_readv`/`writev`, `pidfd_*`, signals
//!   to any process but itself), and the kernel's larger attack surfaces
//!   (`io_uring`, whose requests open sockets out of seccomp's sight, `bpf`,
//!   `userfaultfd`, `perf_event_open`, keyrings, namespaces and mounts).
//!   On x86-64 a second filter refuses the x32 numbering of every call,
//!   which a list of numbers would otherwise let through.
//! - **Landlock** (where the kernel has it, 5.13 or later): no file may be
//!   opened but under the child's own `/proc/self` (its peak memory), and
//!   from 6.12 no signal or abstract socket reaches a process outside.
//!
//! seccomp is a *deny-list*, not an allow-list: an allow-list would have to
//! name every call that glibc, the allocator, libjpeg-turbo's CPU probing
//! and Rust's std make, and that set changes with a libc or crate update:
//! the day it does, every image fails in production. A deny-list stays
//! right across those updates; what it refuses (network, exec, other
//! processes) is stable ABI.
//!
//! Landlock is best effort because many hosts lack it (older kernels,
//! kernels where it is not enabled at boot), and what matters most (no
//! network, no exec, no secrets in the environment) holds without it.
//! Where it is missing, the child can read what the worker's user can: the
//! worker makes itself non-dumpable at start, so that includes neither its
//! environment nor its memory (`/proc/<worker>/environ`, `/mem`).
//!
//! seccomp is required: a child that cannot install its filter refuses to
//! run, and a worker checks at start (see [`Isolation::check_sandbox`]) and
//! refuses to start on such a host. `DARKROOM_WORKER_SANDBOX=off` runs the
//! child without seccomp or Landlock, with a warning at start: for
//! debugging, or a host already sandboxing the whole worker.
//!
//! [`Isolation::check_sandbox`]: crate::isolate::Isolation::check_sandbox

pub mod check;
mod filesystem;
mod syscalls;

use serde::{Deserialize, Serialize};

/// Whether engine children sandbox themselves (`DARKROOM_WORKER_SANDBOX`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Sandbox {
    /// seccomp required, Landlock where the kernel has it.
    #[default]
    On,
    /// No seccomp, no Landlock.
    Off,
}

/// What a child enforces, as its `--check-sandbox` run reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforced {
    /// The seccomp filters are installed.
    pub seccomp: bool,
    pub landlock: Landlock,
}

/// How far Landlock went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Landlock {
    /// Not asked for (`DARKROOM_WORKER_SANDBOX=off`).
    #[default]
    Off,
    /// This kernel has no Landlock, or not enabled.
    Unsupported,
    /// Some of the rules: an older kernel than they were written for.
    Partial,
    Full,
}

impl Landlock {
    /// Whether files are restricted, in full or in part.
    pub fn restricts_files(self) -> bool {
        matches!(self, Landlock::Partial | Landlock::Full)
    }
}

/// Installs the sandbox on this process (all its threads), or refuses.
pub fn enter(sandbox: Sandbox) -> Result<Enforced, String> {
    if sandbox == Sandbox::Off {
        return Ok(Enforced::default());
    }
    // Landlock binds the calling thread and the threads it starts, not
    // those already running: the child has none of its own yet. A host
    // whose container profile hides Landlock's calls reads as unsupported.
    let landlock = filesystem::restrict()?;
    syscalls::install().map_err(|e| {
        format!(
            "cannot install the engine's seccomp filter: {e}; this host's kernel or container \
             refuses seccomp. Set DARKROOM_WORKER_SANDBOX=off to run without a sandbox \
             (not recommended)"
        )
    })?;
    Ok(Enforced {
        seccomp: true,
        landlock,
    })
}
