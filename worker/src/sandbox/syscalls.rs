//! The seccomp filters: the system calls the engine child is refused (see
//! the parent module for why a deny-list).

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Installs the filters on every thread of this process. They stay for
/// its life and pass to any thread it starts.
pub(super) fn install() -> Result<(), String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let refused = filter(refused()?, libc::EPERM, arch)?;
    // ENOSYS, not EPERM: glibc then starts its threads with `clone`, whose
    // flags the first filter reads.
    let clone3 = filter(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        libc::ENOSYS,
        arch,
    )?;
    for program in [refused, clone3].into_iter().chain(x32()) {
        seccompiler::apply_filter_all_threads(&program).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A filter refusing `rules` with `errno` and allowing the rest.
fn filter(rules: Rules, errno: i32, arch: TargetArch) -> Result<BpfProgram, String> {
    let errno = u32::try_from(errno).expect("errno values are positive");
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(|e| e.to_string())
}

/// Every refused call, with the arguments that refuse it (none: always).
fn refused() -> Result<Rules, String> {
    let always = [NETWORK, PROCESS_CREATION, OTHER_PROCESSES, KERNEL_SURFACES]
        .concat()
        .into_iter()
        .map(|call| (call, Vec::new()));
    let mut rules: Rules = always.collect();
    rules.insert(libc::SYS_clone, vec![clone_of_a_process()?]);
    let own = u64::from(std::process::id());
    for call in [libc::SYS_kill, libc::SYS_tgkill, libc::SYS_rt_sigqueueinfo] {
        rules.insert(call, vec![first_argument_is_not(own)?]);
    }
    Ok(rules)
}

/// Sockets of any kind, and every way to use one.
const NETWORK: &[i64] = &[
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
];

/// New programs and processes; threads are `clone` with `CLONE_THREAD`.
const PROCESS_CREATION: &[i64] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_fork,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_vfork,
];

/// Reading, writing or signalling another process (the worker above all);
/// `kill` and friends are refused for any process but this one below.
const OTHER_PROCESSES: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_getfd,
    libc::SYS_pidfd_send_signal,
    libc::SYS_tkill,
    libc::SYS_rt_tgsigqueueinfo,
];

/// Large kernel interfaces an exploit would reach for next: io_uring (its
/// requests open sockets where no seccomp filter sees them), BPF, fault
/// handling in user space, performance counters, keyrings, namespaces and
/// mounts.
const KERNEL_SURFACES: &[i64] = &[
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
];

/// `clone` making a process rather than a thread of this one.
fn clone_of_a_process() -> Result<SeccompRule, String> {
    let thread = u64::try_from(libc::CLONE_THREAD).expect("a positive flag");
    let condition = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(thread),
        0,
    );
    condition
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| e.to_string())
}

/// A signal sent to a process other than `pid` (`kill(0, ..)`, this
/// process's group, includes the worker).
fn first_argument_is_not(pid: u64) -> Result<SeccompRule, String> {
    SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, pid)
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| e.to_string())
}

/// On x86-64, every call by its x32 number (`nr | 0x4000_0000`, the same
/// architecture to seccomp) is refused: a deny-list names the 64-bit
/// numbers only. Kernels built without x32 refuse them anyway.
fn x32() -> Option<BpfProgram> {
    use seccompiler::sock_filter;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let op = |code: u32| u16::try_from(code).expect("BPF opcodes fit 16 bits");
    let statement = |code, k| sock_filter {
        code: op(code),
        jt: 0,
        jf: 0,
        k,
    };
    let enosys = u32::try_from(libc::ENOSYS).expect("errno values are positive");
    cfg!(target_arch = "x86_64").then(|| {
        vec![
            // The call's number, at offset 0 of `seccomp_data`.
            statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
            sock_filter {
                code: op(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K),
                jt: 0,
                jf: 1,
                k: X32_SYSCALL_BIT,
            },
            statement(
                libc::BPF_RET | libc::BPF_K,
                libc::SECCOMP_RET_ERRNO | enosys,
            ),
            statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        ]
    })
}
