//! The long poll, written once for a queue and for a routed queue's parts:
//! look; while nothing is found and the wait has not run out, sleep until a
//! send to a watched queue wakes us (or the fallback poll, for delayed
//! messages and expired locks, which come back without a send); look again.

use std::time::Duration;

use tokio::time::Instant;

use crate::attributes::check_wait;
use crate::{Message, Queue, Result};

/// Polls for up to `wait`. Each round, `watched` names the queues whose
/// sends wake it, each with a tag; `look` receives, told the tag of the
/// queue whose send woke the round, if one did (a routed queue then looks
/// at that part alone). No wake-up: `look` gets `None`.
///
/// (Closures returning futures, not async closures: the futures of those
/// borrow their closure, which axum's handlers cannot prove `Send`.)
pub(crate) async fn long_poll<W, L>(
    wait: Duration,
    fallback: Duration,
    mut watched: impl FnMut() -> W,
    mut look: impl FnMut(Option<i32>) -> L,
) -> Result<Vec<Message>>
where
    W: Future<Output = Result<Vec<(i32, Queue)>>>,
    L: Future<Output = Result<Vec<Message>>>,
{
    check_wait(wait)?;
    let deadline = Instant::now() + wait;
    let mut woken_by = None;
    // Counts this receive among the waiting ones (`receives_waiting`);
    // replaced each round with no gap between the old count and the new.
    let mut _counted = Vec::new();
    loop {
        let queues = watched().await?;
        let waiters: Vec<_> = queues
            .iter()
            .map(|(_, q)| q.inner.hub.waiter(q.id()))
            .collect();
        // Registered before looking, so a send between the look and the
        // wait still wakes us.
        let mut notified: Vec<_> = waiters.iter().map(|w| Box::pin(w.notified())).collect();
        for n in &mut notified {
            n.as_mut().enable();
        }
        _counted = queues
            .iter()
            .map(|(_, q)| q.inner.hub.count_waiting(q.id()))
            .collect();
        let messages = look(woken_by.take()).await?;
        let now = Instant::now();
        if !messages.is_empty() || now >= deadline {
            return Ok(messages);
        }
        let nap = (deadline - now).min(fallback);
        if notified.is_empty() {
            tokio::time::sleep(nap).await;
        } else if let Ok(((), i, _)) =
            tokio::time::timeout(nap, futures::future::select_all(notified)).await
        {
            woken_by = Some(queues[i].0);
        }
    }
}
