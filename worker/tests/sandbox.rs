//! The engine child's sandbox, as a worker starts the child: each test
//! asks a real child (`darkroom-worker engine --check-sandbox`, started by
//! the worker's own [`Isolation`]) to try one way out from inside it.

use std::path::PathBuf;
use std::time::Duration;

use worker::isolate::Isolation;
use worker::sandbox::check::{Escapes, Report};
use worker::sandbox::{Landlock, Sandbox};

fn isolation(sandbox: Sandbox) -> Isolation {
    Isolation {
        program: PathBuf::from(env!("CARGO_BIN_EXE_darkroom-worker")),
        deadline: Duration::from_secs(30),
        sandbox,
    }
}

async fn report() -> Report {
    isolation(Sandbox::On).check_sandbox().await.unwrap()
}

/// seccomp's refusal; Landlock's is `EACCES`, as is a file's mode.
const EPERM: i32 = 1;
const EACCES: i32 = 13;

/// `escape` was tried and refused with `errno`.
fn assert_refused(escapes: &Escapes, escape: &str, errno: i32) {
    let outcome = escapes
        .get(escape)
        .unwrap_or_else(|| panic!("`{escape}` was not tried"));
    let refusal = format!("(os error {errno})");
    assert!(
        outcome.as_deref().is_some_and(|e| e.ends_with(&refusal)),
        "`{escape}`: {outcome:?}, expected {refusal}"
    );
}

#[tokio::test]
async fn engine_child_cannot_open_a_socket() {
    let report = report().await;
    assert!(report.enforced.seccomp, "{report:?}");
    assert_refused(&report.escapes, "open a network socket", EPERM);
    assert_refused(&report.escapes, "open a Unix socket", EPERM);
}

#[tokio::test]
async fn engine_child_cannot_start_a_program() {
    assert_refused(&report().await.escapes, "start a program", EPERM);
}

#[tokio::test]
async fn engine_child_cannot_signal_its_worker() {
    assert_refused(&report().await.escapes, "signal the worker", EPERM);
}

/// The worker's environment holds its secrets (`DATABASE_URL`, S3 and SQS
/// keys, the admin token); this test's holds at least cargo's variables.
#[tokio::test]
async fn engine_child_gets_none_of_the_workers_environment() {
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "run under cargo, whose variables a leaking child would show"
    );
    let report = report().await;
    assert_eq!(report.environment, Vec::<String>::new());
}

#[tokio::test]
async fn engine_child_opens_no_file_outside_its_own_proc_where_landlock_is() {
    let report = report().await;
    if report.enforced.landlock == Landlock::Unsupported {
        eprintln!("this kernel has no Landlock; nothing to check");
        return;
    }
    assert!(report.enforced.landlock.restricts_files(), "{report:?}");
    assert_refused(&report.file_escapes, "list the root directory", EACCES);
    assert_refused(
        &report.file_escapes,
        "read the worker's environment",
        EACCES,
    );
}

/// Codecs may start threads: the filter lets `clone` make threads.
#[tokio::test]
async fn engine_child_can_still_start_threads() {
    assert_eq!(report().await.threads_failed, None);
}

/// The check is not vacuous: without the sandbox every way out works, and
/// the report says so.
#[tokio::test]
async fn child_without_its_sandbox_gets_out_and_the_check_says_so() {
    let report = isolation(Sandbox::Off).check_sandbox().await.unwrap();
    assert!(!report.enforced.seccomp, "{report:?}");
    assert_eq!(
        report.escaped(),
        [
            "open a Unix socket",
            "open a network socket",
            "signal the worker",
            "start a program"
        ],
        "{report:?}"
    );
    assert!(
        report.file_escapes.values().all(Option::is_none),
        "{report:?}"
    );
}

/// Set in the environment of this test binary run again by
/// `child_that_cannot_install_its_filter_refuses_to_run`.
const ON_A_HOST_WITHOUT_SECCOMP: &str = "DARKROOM_TEST_ON_A_HOST_WITHOUT_SECCOMP";

/// A host whose kernel lacks seccomp, or whose container profile forbids
/// it, does not get unsandboxed children: the child refuses to run, and the
/// worker's check says why. Played by this test binary run again with
/// `seccomp()` itself refused to it and to its children.
#[test]
fn child_that_cannot_install_its_filter_refuses_to_run() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["on_a_host_without_seccomp", "--exact", "--ignored"])
        .env(ON_A_HOST_WITHOUT_SECCOMP, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
#[ignore = "run by child_that_cannot_install_its_filter_refuses_to_run"]
async fn on_a_host_without_seccomp() {
    assert!(std::env::var_os(ON_A_HOST_WITHOUT_SECCOMP).is_some());
    refuse_seccomp_from_now_on();
    let refused = isolation(Sandbox::On).check_sandbox().await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("cannot install the engine's seccomp filter"),
        "{refused}"
    );
}

/// Refuses the `seccomp` system call to this process and its children.
fn refuse_seccomp_from_now_on() {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let rules = [(nix::libc::SYS_seccomp, Vec::new())].into();
    let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
    let errno = SeccompAction::Errno(nix::libc::EPERM as u32);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, errno, arch).unwrap();
    let program = BpfProgram::try_from(filter).unwrap();
    seccompiler::apply_filter_all_threads(&program).unwrap();
}
