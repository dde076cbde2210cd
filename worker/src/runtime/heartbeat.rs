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
    let renew = || requests.change_visibility(&receipt, lock);
    keep_leased(renew, lock / 3, hold, lost).await;
}

/// [`heartbeat`] with the renewal apart, so tests can count renewals and
/// fail them without a queue.
async fn keep_leased<F, R>(mut renew: F, every: Duration, hold: Duration, lost: CancellationToken)
where
    F: FnMut() -> R,
    R: Future<Output = queue::Result<()>>,
{
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
        match renew().await {
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(retry_backoff(1), Duration::from_secs(1));
        assert_eq!(retry_backoff(3), Duration::from_secs(4));
        assert_eq!(retry_backoff(100), Duration::from_secs(256));
    }

    const EVERY: Duration = Duration::from_millis(10);

    /// Runs [`keep_leased`] with a renewal that counts its calls and answers
    /// with `answer` of the call's number (from 1).
    fn start(
        hold: Duration,
        answer: fn(u32) -> queue::Result<()>,
    ) -> (
        tokio::task::JoinHandle<()>,
        CancellationToken,
        Arc<AtomicU32>,
    ) {
        let lost = CancellationToken::new();
        let renewals = Arc::new(AtomicU32::new(0));
        let counted = renewals.clone();
        let renew = move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move { answer(n) }
        };
        let task = tokio::spawn(keep_leased(renew, EVERY, hold, lost.clone()));
        (task, lost, renewals)
    }

    /// A stuck attempt must not keep its message from every other worker
    /// for ever: past `hold` the lease is let go, however well renewals go.
    #[tokio::test]
    async fn a_message_held_past_its_hold_is_let_go_though_renewals_succeed() {
        let hold = Duration::from_millis(200);
        let started = Instant::now();
        let (task, lost, renewals) = start(hold, |_| Ok(()));
        tokio::time::timeout(Duration::from_secs(10), lost.cancelled())
            .await
            .expect("the heartbeat kept renewing the lease past its hold");
        assert!(
            started.elapsed() >= hold,
            "let go early: {:?}",
            started.elapsed()
        );
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the heartbeat went on after letting go")
            .unwrap();
        let renewed = renewals.load(Ordering::SeqCst);
        assert!(renewed >= 1, "the lease was never renewed while held");
        assert!(
            u128::from(renewed) <= hold.as_millis() / EVERY.as_millis(),
            "renewed {renewed} times in {hold:?}"
        );
    }

    /// Another worker has the message: working on is wasted, at once.
    #[tokio::test]
    async fn a_stale_lease_is_given_up_at_the_first_renewal() {
        let (task, lost, renewals) = start(Duration::from_secs(3600), |_| {
            Err(queue::Error::StaleReceipt)
        });
        tokio::time::timeout(Duration::from_secs(10), lost.cancelled())
            .await
            .expect("the heartbeat renewed a stale lease on");
        task.await.unwrap();
        assert_eq!(renewals.load(Ordering::SeqCst), 1);
    }

    /// A database that is down says nothing of the lease: work goes on, and
    /// renewals resume when it answers again.
    #[tokio::test]
    async fn failing_renewals_keep_the_work_going() {
        let (task, lost, renewals) = start(Duration::from_secs(3600), |n| {
            if n <= 3 {
                Err(queue::Error::ShardUnavailable("down".into()))
            } else {
                Ok(())
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while renewals.load(Ordering::SeqCst) < 6 {
            assert!(Instant::now() < deadline, "renewals stopped after failing");
            tokio::time::sleep(EVERY).await;
        }
        assert!(
            !lost.is_cancelled(),
            "the work was abandoned over a failed renewal"
        );
        task.abort();
    }
}
