//! How many deliveries of each subscription a pusher has out, so that one
//! endpoint cannot hold every slot while others' deliveries wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Deliveries out per subscription, each at most `cap`.
#[derive(Debug)]
pub(crate) struct InFlight {
    cap: usize,
    counts: Mutex<HashMap<i32, usize>>,
}

/// A delivery of `subscription` out; given back when dropped, so a
/// delivery's task that panics or is aborted still frees its place.
#[derive(Debug)]
pub(crate) struct Place {
    owner: Arc<InFlight>,
    subscription: i32,
}

impl InFlight {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            counts: Mutex::default(),
        }
    }

    /// A place for a delivery of `subscription`, unless it has `cap` out.
    pub(crate) fn take(self: &Arc<Self>, subscription: i32) -> Option<Place> {
        let mut counts = self.counts.lock().expect("in-flight lock");
        let n = counts.entry(subscription).or_default();
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Place {
            owner: self.clone(),
            subscription,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().expect("in-flight lock");
        if let Some(n) = counts.get_mut(&self.subscription) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.subscription);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_at_its_cap_gets_no_place_until_one_is_given_back() {
        let in_flight = Arc::new(InFlight::new(2));
        let first = in_flight.take(1).unwrap();
        let _second = in_flight.take(1).unwrap();
        assert!(in_flight.take(1).is_none());
        assert!(in_flight.take(2).is_some(), "others are not held");
        drop(first);
        assert!(in_flight.take(1).is_some());
    }
}
