//! The task that keeps a message's lease while its work runs, and the
//! backoff between tries.

use std::time::{Duration, Instant};

use queue::{Receipt, Routed};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Extends the lease every third of `lock` until aborted; cancels `lost`
/// when the lease turns out stale, or once `hold` has passed (the work is
/// then abandoned and the lease runs out). Failures to reach Postgres are
/// not staleness: the lease may well still hold, so work goes on.
pub(super) async fn heartbeat(
    requests: Routed,
    receipt: Receipt,
    lock: Duration,
    hold: Duration,
    lost: CancellationToken,
) {
    let every = lock / 3;
    let until = Instant::now() + hold;
    loop {
        tokio::time::sleep(every).await;
        if Instant::now() >= until {
            warn!(
                ?hold,
                "held this message longer than any attempt may take; letting it go"
            );
            lost.cancel();
            return;
        }
        match requests.change_visibility(&receipt, lock).await {
            Ok(()) => {}
            Err(queue::Error::StaleReceipt) => {
                lost.cancel();
                return;
            }
            Err(e) => warn!(error = %e, "heartbeat failed; will try again"),
        }
    }
}

/// Backoff before another try: 1 s, 2 s, 4 s ... up to 256 s.
pub(super) fn retry_backoff(attempt: i32) -> Duration {
    let exp = attempt.clamp(1, 9) as u32 - 1;
    Duration::from_secs(2u64.pow(exp)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(retry_backoff(1), Duration::from_secs(1));
        assert_eq!(retry_backoff(3), Duration::from_secs(4));
        assert_eq!(retry_backoff(100), Duration::from_secs(256));
    }
}
