//! A circuit breaker per endpoint (scheme, host and port: see
//! [`super::endpoint_key`]), held in the pusher's memory: each pusher learns
//! on its own that an endpoint is failing, which costs at most a
//! threshold's worth of tries per pusher and needs no shared state. Keyed by
//! endpoint, not subscription: anyone may make a job, so one client can own
//! a hundred subscriptions to the same black hole.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use std::time::Instant;

/// Whether a delivery may be POSTed now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Post,
    /// The endpoint is parked: try again after this long, without a POST.
    Parked(Duration),
}

/// The breakers of every endpoint a pusher saw fail.
#[derive(Debug)]
pub(crate) struct Breakers {
    /// Consecutive failures that park an endpoint.
    threshold: u32,
    /// The first cool-off; each failed probe doubles it, up to `max_cool_off`.
    cool_off: Duration,
    max_cool_off: Duration,
    /// How long a probe may be out before another is allowed (its outcome
    /// can be lost with its task).
    probe_patience: Duration,
    states: Mutex<HashMap<String, Failing>>,
}

/// An endpoint whose last delivery failed.
#[derive(Debug, Default)]
struct Failing {
    consecutive: u32,
    parked_until: Option<Instant>,
    cool_off: Duration,
    probe_since: Option<Instant>,
}

impl Breakers {
    pub(crate) fn new(threshold: u32, cool_off: Duration, probe_patience: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_off,
            max_cool_off: (cool_off * 64).min(Duration::from_secs(600)).max(cool_off),
            probe_patience,
            states: Mutex::default(),
        }
    }

    /// Whether `endpoint` may be POSTed to now. Once its cool-off is
    /// over, one delivery goes as a probe and the rest wait for its outcome.
    pub(crate) fn admit(&self, endpoint: &str) -> Admission {
        self.admit_at(endpoint, Instant::now())
    }

    fn admit_at(&self, endpoint: &str, now: Instant) -> Admission {
        let mut states = self.states.lock().expect("breakers lock");
        let Some(s) = states.get_mut(endpoint) else {
            return Admission::Post;
        };
        let Some(until) = s.parked_until else {
            return Admission::Post;
        };
        if now < until {
            return Admission::Parked(until - now);
        }
        match s.probe_since {
            Some(since) if now - since < self.probe_patience => {
                Admission::Parked(self.probe_patience - (now - since))
            }
            _ => {
                s.probe_since = Some(now);
                Admission::Post
            }
        }
    }

    /// Records a POST's outcome: a success closes the breaker, the
    /// threshold's failure or a failed probe parks the endpoint.
    pub(crate) fn record(&self, endpoint: &str, delivered: bool) {
        self.record_at(endpoint, delivered, Instant::now());
    }

    fn record_at(&self, endpoint: &str, delivered: bool, now: Instant) {
        let mut states = self.states.lock().expect("breakers lock");
        if delivered {
            states.remove(endpoint);
            return;
        }
        let s = states.entry(endpoint.to_owned()).or_default();
        s.consecutive += 1;
        let probe_failed = s.probe_since.take().is_some();
        if probe_failed {
            s.cool_off = (s.cool_off * 2).min(self.max_cool_off);
        } else if s.consecutive >= self.threshold && s.parked_until.is_none() {
            s.cool_off = self.cool_off;
        } else {
            return;
        }
        s.parked_until = Some(now + s.cool_off);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_OFF: Duration = Duration::from_secs(60);

    fn breakers() -> Breakers {
        Breakers::new(3, COOL_OFF, Duration::from_secs(10))
    }

    fn parked(a: Admission) -> bool {
        matches!(a, Admission::Parked(_))
    }

    /// Breakers whose subscription 1 failed three times at `t0`.
    fn tripped(t0: Instant) -> Breakers {
        let b = breakers();
        for _ in 0..3 {
            b.record_at("a", false, t0);
        }
        b
    }

    #[test]
    fn the_thresholds_failure_parks_the_endpoint_and_no_other() {
        let b = breakers();
        for _ in 0..2 {
            b.record("a", false);
            assert_eq!(b.admit("a"), Admission::Post);
        }
        b.record("a", false);
        assert!(parked(b.admit("a")));
        assert_eq!(b.admit("b"), Admission::Post);
    }

    #[test]
    fn a_success_between_failures_starts_the_count_again() {
        let b = breakers();
        b.record("a", false);
        b.record("a", false);
        b.record("a", true);
        b.record("a", false);
        b.record("a", false);
        assert_eq!(b.admit("a"), Admission::Post);
    }

    #[test]
    fn after_the_cool_off_one_probe_goes_and_its_failure_doubles_the_wait() {
        let t0 = Instant::now();
        let b = tripped(t0);
        let t1 = t0 + COOL_OFF;
        assert_eq!(b.admit_at("a", t1), Admission::Post, "the probe");
        assert!(parked(b.admit_at("a", t1)), "others wait for the probe");
        b.record_at("a", false, t1);
        assert!(
            parked(b.admit_at("a", t1 + COOL_OFF)),
            "the cool-off doubled"
        );
        let t2 = t1 + COOL_OFF * 2;
        assert_eq!(b.admit_at("a", t2), Admission::Post);
        b.record_at("a", true, t2);
        assert_eq!(b.admit_at("a", t2), Admission::Post, "closed by the probe");
    }

    #[test]
    fn a_lost_probe_is_replaced_after_its_patience() {
        let t0 = Instant::now();
        let b = tripped(t0);
        let t1 = t0 + COOL_OFF;
        assert_eq!(b.admit_at("a", t1), Admission::Post);
        assert!(parked(b.admit_at("a", t1 + Duration::from_secs(9))));
        assert_eq!(
            b.admit_at("a", t1 + Duration::from_secs(10)),
            Admission::Post
        );
    }
}
