//! How many deliveries to each endpoint (scheme, host and port) a pusher
//! has out, so that one endpoint cannot hold every slot while others'
//! deliveries wait, however many subscriptions point at it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Deliveries out per endpoint, each at most `cap`.
#[derive(Debug)]
pub(crate) struct InFlight {
    cap: usize,
    counts: Mutex<HashMap<String, usize>>,
}

/// A delivery to `endpoint` out; given back when dropped, so a
/// delivery's task that panics or is aborted still frees its place.
#[derive(Debug)]
pub(crate) struct Place {
    owner: Arc<InFlight>,
    endpoint: String,
}

impl InFlight {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            counts: Mutex::default(),
        }
    }

    /// A place for a delivery to `endpoint`, unless it has `cap` out.
    pub(crate) fn take(self: &Arc<Self>, endpoint: &str) -> Option<Place> {
        let mut counts = self.counts.lock().expect("in-flight lock");
        let n = counts.entry(endpoint.to_owned()).or_default();
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Place {
            owner: self.clone(),
            endpoint: endpoint.to_owned(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().expect("in-flight lock");
        if let Some(n) = counts.get_mut(&self.endpoint) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.endpoint);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_at_its_cap_gets_no_place_until_one_is_given_back() {
        let in_flight = Arc::new(InFlight::new(2));
        let first = in_flight.take("a").unwrap();
        let _second = in_flight.take("a").unwrap();
        assert!(in_flight.take("a").is_none());
        assert!(in_flight.take("b").is_some(), "others are not held");
        drop(first);
        assert!(in_flight.take("a").is_some());
    }
}
