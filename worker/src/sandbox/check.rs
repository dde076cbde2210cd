//! What a sandboxed engine child tries, to show the sandbox holds: run as
//! `darkroom-worker engine --check-sandbox`, by a worker at start and by
//! the tests. Each try is what code smuggled in by a crafted image would
//! try first.

use std::collections::BTreeMap;
use std::process::Stdio;

use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::Enforced;

/// What a child found it could and could not do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub enforced: Enforced,
    /// Names of the environment variables the child was given.
    pub environment: Vec<String>,
    /// Each way out that seccomp stops, and the error that stopped it
    /// (`None`: it got out).
    pub escapes: Escapes,
    /// Each way into files that Landlock stops where the kernel has it.
    pub file_escapes: Escapes,
    /// Why a thread could not be started (`None`: it could, as the codecs
    /// may need).
    pub threads_failed: Option<String>,
}

/// Ways out tried, each with the error that stopped it (`None`: it got out).
pub type Escapes = BTreeMap<String, Option<String>>;

impl Report {
    /// The ways out that were not stopped, of those the sandbox enforced
    /// stops.
    pub fn escaped(&self) -> Vec<&str> {
        let files = self
            .enforced
            .landlock
            .restricts_files()
            .then_some(&self.file_escapes);
        std::iter::once(&self.escapes)
            .chain(files)
            .flatten()
            .filter(|(_, stopped)| stopped.is_none())
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

type Try = Box<dyn Fn() -> std::io::Result<()>>;

/// Tries each way out from inside the sandbox.
pub fn report(enforced: Enforced) -> Report {
    let parent = std::os::unix::process::parent_id();
    let escapes: Vec<(&str, Try)> = vec![
        (
            "open a network socket",
            Box::new(|| std::net::UdpSocket::bind("127.0.0.1:0").map(drop)),
        ),
        (
            "open a Unix socket",
            Box::new(|| std::os::unix::net::UnixDatagram::unbound().map(drop)),
        ),
        (
            "start a program",
            Box::new(|| {
                // No /dev/null to open, which Landlock alone would refuse.
                std::process::Command::new("/proc/self/exe")
                    .arg("--version")
                    .stdin(Stdio::inherit())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .output()
                    .map(drop)
            }),
        ),
        (
            "signal the worker",
            Box::new(move || {
                let pid = Pid::from_raw(i32::try_from(parent).unwrap_or(i32::MAX));
                Ok(kill(pid, None)?)
            }),
        ),
    ];
    let file_escapes: Vec<(&str, Try)> = vec![
        (
            "read the worker's environment",
            Box::new(move || std::fs::read(format!("/proc/{parent}/environ")).map(drop)),
        ),
        (
            "list the root directory",
            Box::new(|| std::fs::read_dir("/").map(drop)),
        ),
    ];
    Report {
        enforced,
        environment: std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect(),
        escapes: try_all(escapes),
        file_escapes: try_all(file_escapes),
        threads_failed: std::thread::Builder::new()
            .spawn(|| ())
            .and_then(|t| t.join().map_err(|_| std::io::Error::other("it panicked")))
            .err()
            .map(|e| e.to_string()),
    }
}

fn try_all(tries: Vec<(&str, Try)>) -> Escapes {
    tries
        .into_iter()
        .map(|(name, try_it)| (name.to_owned(), try_it().err().map(|e| e.to_string())))
        .collect()
}
