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
//! The child takes its JSON task as an argument and the image as its
//! stdin, an [`Original`]: a memory file the worker wrote as the download
//! arrived, so the image is not gathered into one buffer first nor pushed
//! through a pipe. It writes a one-line JSON reply and then the encoded
//! output to stdout.
//!
//! # Layout
//! - `original`: the image handed to a child, a memory file.
//! - `protocol`: the task a child is given and the reply it writes back.
//! - `error`: why a child produced no image, read from its reply or its exit.
//! - `parent`: the worker's side: starting a child within its share and
//!   deadline.
//! - `child`: the child's side: confining itself, then processing.

mod child;
mod error;
mod original;
mod parent;
mod protocol;

pub use child::{Confinement, check_sandbox_main, child_main};
pub use error::RunError;
pub use original::Original;
pub use parent::{Isolation, Share};
pub use protocol::Processed;

/// The subcommand a child runs.
pub const SUBCOMMAND: &str = "engine";
