//! Holding deliveries back from endpoints that cannot take them now: one
//! with its few slots taken, or one its breaker has parked. Such a delivery
//! goes back to the queue unsent, with no try spent, rather than wait in a
//! slot that another endpoint's delivery could use.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Pusher;
use crate::topics::breaker::Admission;
use crate::topics::in_flight::Place;
use crate::{Error, Message, Queue, Result};

impl Pusher {
    /// A place among `endpoint`'s slots for delivery `m`, or none: `m` is
    /// then back in `queue`, due when the endpoint may take it.
    pub(super) async fn admit(
        &self,
        queue: &Queue,
        m: &Message,
        endpoint: &str,
    ) -> Result<Option<Place>> {
        let Some(place) = self.in_flight.take(endpoint) else {
            put_back(queue, m, jittered(self.settings.busy_retry)).await?;
            return Ok(None);
        };
        if let Admission::Parked(wait) = self.breakers.admit(endpoint) {
            self.counts.parked.fetch_add(1, Ordering::Relaxed);
            put_back(queue, m, jittered(wait)).await?;
            return Ok(None);
        }
        Ok(Some(place))
    }
}

/// Makes a delivery due again after `delay` without a try spent on it.
async fn put_back(queue: &Queue, m: &Message, delay: Duration) -> Result<()> {
    match queue.change_visibility(&m.receipt, delay).await {
        // Another pusher has it now.
        Ok(()) | Err(Error::StaleReceipt) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `delay` and up to a quarter more, so deliveries put back together do
/// not all come due at once.
fn jittered(delay: Duration) -> Duration {
    let nanos = u64::from(chrono::Utc::now().timestamp_subsec_nanos());
    delay + delay.mul_f64((nanos % 1000) as f64 / 4000.0)
}
