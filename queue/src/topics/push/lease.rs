//! The pusher's loop: it leases as many deliveries as it has free slots
//! and starts a task for each, so a slow POST holds only its own slot and
//! the loop never waits for a whole batch.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Pusher;
use crate::topics::DELIVERY_QUEUE;
use crate::{Error, Message, Queue, Result};

impl Pusher {
    /// Delivers until `shutdown`, then lets the deliveries out finish
    /// (for up to a POST's timeout).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut out = JoinSet::new();
        self.lease_until(&shutdown, &mut out).await;
        let finish = async { while out.join_next().await.is_some() {} };
        // Past this, what is still out is left to its lease.
        let _ = tokio::time::timeout(self.settings.timeout + Duration::from_secs(1), finish).await;
    }

    async fn lease_until(&self, shutdown: &CancellationToken, out: &mut JoinSet<()>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut queue = None;
        loop {
            while out.try_join_next().is_some() {}
            let free = tokio::select! {
                () = shutdown.cancelled() => return,
                free = free_slots(&slots) => free,
            };
            let leased = tokio::select! {
                () = shutdown.cancelled() => return,
                leased = self.lease(&mut queue, free.num_permits()) => leased,
            };
            match leased {
                Ok(batch) => self.start(out, queue.as_ref(), batch, free),
                Err(e) => {
                    tracing::warn!(error = %e, "topic pusher failed; will retry");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Leases up to `n` due deliveries, waiting a few seconds for one.
    async fn lease(&self, queue: &mut Option<Queue>, n: usize) -> Result<Vec<Message>> {
        let wait = Duration::from_secs(5);
        if queue.is_none() {
            match self.queues.open(DELIVERY_QUEUE).await {
                Ok(q) => *queue = Some(q),
                // No topic yet.
                Err(Error::QueueNotFound(_)) => {
                    tokio::time::sleep(wait).await;
                    return Ok(Vec::new());
                }
                Err(e) => return Err(e),
            }
        }
        let queue = queue.as_ref().expect("opened above");
        queue.receive_wait(n, self.settings.lock, wait).await
    }

    /// Starts a task for each of `batch`, each holding one of `free`.
    fn start(
        &self,
        out: &mut JoinSet<()>,
        queue: Option<&Queue>,
        batch: Vec<Message>,
        mut free: OwnedSemaphorePermit,
    ) {
        let Some(queue) = queue else { return };
        for m in batch {
            let slot = free.split(1).expect("a slot per leased delivery");
            let (pusher, queue) = (self.clone(), queue.clone());
            out.spawn(async move {
                if let Err(e) = pusher.deliver(&queue, &m).await {
                    // The lease runs out and the delivery comes back.
                    tracing::warn!(error = %e, message = m.id, "topic delivery failed");
                }
                drop(slot);
            });
        }
    }
}

/// A permit for one free slot, and for every other one free then.
async fn free_slots(slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    let mut free = slots
        .clone()
        .acquire_owned()
        .await
        .expect("the slots are never closed");
    let rest = u32::try_from(slots.available_permits()).unwrap_or(u32::MAX);
    if rest > 0
        && let Ok(more) = slots.clone().try_acquire_many_owned(rest)
    {
        free.merge(more);
    }
    free
}
