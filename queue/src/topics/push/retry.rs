//! CMQ's retry strategies: whether and when a delivery is tried again after
//! a failed POST, and sending it back to the queue for that try. Kept apart
//! from the POST so the strategies can be tested without one.

use std::time::Duration;

use crate::attributes::MAX_DELAY;
use crate::topics::RetryPolicy;
use crate::topics::publish::Delivery;
use crate::{Message, NewMessage, Queue, Result};

/// Longest wait between exponential-decay tries, as CMQ's.
const MAX_DECAY: Duration = Duration::from_secs(512);
/// Tries after the first under BACKOFF_RETRY.
const BACKOFF_RETRIES: u32 = 3;

/// What became of one delivery attempt.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Delivered,
    Retry(Duration),
    Dropped,
}

/// Where a delivery stands after a failed try.
pub(super) struct Tries {
    /// This try's number, 1 for the first.
    pub(super) attempt: u32,
    pub(super) max: u32,
    pub(super) age: Duration,
    pub(super) lifetime: Duration,
}

/// What to do after try `tries.attempt` under `retry`.
pub(super) fn outcome(delivered: bool, retry: RetryPolicy, tries: &Tries) -> Outcome {
    if delivered {
        return Outcome::Delivered;
    }
    if tries.attempt >= tries.max {
        return Outcome::Dropped;
    }
    let delay = match retry {
        RetryPolicy::Backoff { interval } if tries.attempt <= BACKOFF_RETRIES => interval,
        RetryPolicy::Backoff { .. } => return Outcome::Dropped,
        RetryPolicy::ExponentialDecay => {
            let exponent = tries.attempt.saturating_sub(1).min(9);
            Duration::from_secs(1 << exponent).min(MAX_DECAY)
        }
    };
    if tries.age + delay >= tries.lifetime {
        Outcome::Dropped
    } else {
        Outcome::Retry(delay)
    }
}

/// Sends a failed delivery back with one more try counted in it, due after
/// `delay`. Its tries are counted in the delivery rather than read from
/// its receive count, which put-backs raise too.
pub(super) async fn retry_later(
    queue: &Queue,
    m: &Message,
    mut d: Delivery,
    delay: Duration,
) -> Result<()> {
    d.tries += 1;
    let again = NewMessage {
        body: serde_json::to_string(&d).expect("a delivery serializes"),
        delay: Some(delay.min(MAX_DELAY)),
        group: None,
    };
    let mut tx = queue.pool().begin().await?;
    let deleted = queue
        .delete_batch_in(&mut tx, std::slice::from_ref(&m.receipt))
        .await?;
    // Its lease ran out: whoever holds it now decides.
    if deleted.deleted.is_empty() {
        return Ok(());
    }
    queue.send_batch_in(&mut tx, &[again]).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn try_number(attempt: u32) -> Tries {
        Tries {
            attempt,
            max: u32::MAX,
            age: Duration::ZERO,
            lifetime: DAY,
        }
    }

    #[test]
    fn exponential_decay_doubles_from_one_second_to_its_cap() {
        let delays: Vec<_> = (1..=12)
            .map(|a| outcome(false, RetryPolicy::ExponentialDecay, &try_number(a)))
            .collect();
        let secs = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512];
        for (got, s) in delays.iter().zip(secs) {
            assert_eq!(*got, Outcome::Retry(Duration::from_secs(s)));
        }
    }

    #[test]
    fn backoff_tries_three_more_times_then_drops() {
        let retry = RetryPolicy::Backoff {
            interval: Duration::from_secs(10),
        };
        for attempt in 1..=3 {
            assert_eq!(
                outcome(false, retry, &try_number(attempt)),
                Outcome::Retry(Duration::from_secs(10))
            );
        }
        assert_eq!(outcome(false, retry, &try_number(4)), Outcome::Dropped);
    }

    #[test]
    fn no_retry_outlives_the_message() {
        let old = Tries {
            age: Duration::from_secs(40),
            lifetime: Duration::from_secs(60),
            ..try_number(6)
        };
        assert_eq!(
            outcome(false, RetryPolicy::ExponentialDecay, &old),
            Outcome::Dropped
        );
        assert_eq!(
            outcome(true, RetryPolicy::ExponentialDecay, &old),
            Outcome::Delivered
        );
    }

    #[test]
    fn the_last_allowed_try_is_not_retried() {
        let last = Tries {
            max: 16,
            ..try_number(16)
        };
        assert_eq!(
            outcome(false, RetryPolicy::ExponentialDecay, &last),
            Outcome::Dropped
        );
        let before = Tries {
            max: 16,
            ..try_number(15)
        };
        assert!(matches!(
            outcome(false, RetryPolicy::ExponentialDecay, &before),
            Outcome::Retry(_)
        ));
    }
}
