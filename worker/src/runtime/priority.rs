//! Which image gets the CPU first when several want it.
//!
//! Every image's engine runs in its own child process, so the kernel's
//! scheduler shares the cores among them by niceness. A child whose recipe
//! costs about a second of a core runs at the worker's own priority; one
//! that costs more runs nicer, 4 steps per doubling. When a client's 49 MP
//! teeth whitening (seconds) and another's thumbnail (a tenth of a second)
//! run together, the thumbnail gets nearly a core of its own and is done at
//! once, where shared evenly it would wait on the big one; with the cores
//! free, niceness changes nothing and the big one runs at full speed.

/// Work (pixel passes, see `common::cost`) of about one second of one core:
/// what still runs at the worker's own priority.
const INTERACTIVE_WORK: u64 = 400_000_000;

/// Niceness added per doubling of the work past [`INTERACTIVE_WORK`].
const STEP: u32 = 4;

/// The niceness of a child whose recipe costs `work` pixel passes: 0 up
/// to about a second of a core, 4 more per doubling, at most 19.
pub(super) fn niceness(work: u64) -> u8 {
    let doublings = work.div_ceil(INTERACTIVE_WORK).max(1).ilog2();
    u8::try_from((doublings * STEP).min(19)).expect("at most 19")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_of_a_second_or_less_keeps_the_workers_priority() {
        assert_eq!(niceness(0), 0);
        assert_eq!(niceness(80_000_000), 0, "a 12 MP photo's thumbnail");
        assert_eq!(niceness(INTERACTIVE_WORK), 0);
    }

    #[test]
    fn each_doubling_past_a_second_is_four_steps_nicer_up_to_19() {
        assert_eq!(niceness(2 * INTERACTIVE_WORK), 4);
        assert_eq!(niceness(4 * INTERACTIVE_WORK), 8);
        assert_eq!(niceness(5 * INTERACTIVE_WORK), 8, "a 49 MP teeth whitening");
        assert_eq!(niceness(16 * INTERACTIVE_WORK), 16);
        assert_eq!(niceness(32 * INTERACTIVE_WORK), 19);
        assert_eq!(niceness(u64::MAX), 19);
    }
}
