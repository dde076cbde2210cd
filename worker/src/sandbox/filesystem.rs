//! Landlock: the engine child opens no file but its own `/proc/self`, and
//! (from Linux 6.12) signals no process and reaches no abstract socket
//! outside its sandbox. Best effort: see the parent module.

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
    make_bitflags, path_beneath_rules,
};

use super::Landlock;

/// The newest Landlock ABI these rules were written and tested against;
/// a newer kernel enforces it as such, an older one what it knows of it.
const ABI_TESTED: ABI = ABI::V6;

/// Restricts this thread and those it starts; returns how far the kernel
/// took it.
pub(super) fn restrict() -> Result<Landlock, String> {
    let refused = |e: landlock::RulesetError| format!("cannot set up Landlock: {e}");
    // Its peak memory is read from /proc/self/status once the image is
    // done. Read only: no `Execute`, which reading would bring along.
    let read = make_bitflags!(AccessFs::{ReadFile | ReadDir});
    let own_proc = path_beneath_rules(["/proc/self"], read);
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_TESTED))
        .and_then(|r| r.scope(Scope::from_all(ABI_TESTED)))
        .and_then(Ruleset::create)
        .and_then(|r| r.add_rules(own_proc))
        .and_then(|r| r.restrict_self())
        .map_err(refused)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Landlock::Full,
        RulesetStatus::PartiallyEnforced => Landlock::Partial,
        RulesetStatus::NotEnforced => Landlock::Unsupported,
    })
}
