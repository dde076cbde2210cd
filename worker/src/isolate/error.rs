//! Why a child produced no image. Kept apart from the reply it is read from
//! because a child that dies writes no reply: then its exit status and last
//! words on stderr are all there is to go on.

use std::time::Duration;

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

/// What a child limited to `memory` bytes died of, from its exit `status`
/// and `stderr`.
pub(super) fn exit_error(
    status: &std::process::ExitStatus,
    stderr: &[u8],
    memory: u64,
) -> RunError {
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
