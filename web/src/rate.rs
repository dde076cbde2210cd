//! Per-client rates: requests of any kind, job creations, upload requests,
//! and the work uploads ask of the workers (see `common::cost`), each a
//! token bucket per client address (GCRA, `governor`). Over a rate, a
//! request is answered 429 with `Retry-After`.
//!
//! A client is its IP address (an IPv6 client its /64, what one subscriber
//! usually holds), taken from the connection or, behind a proxy, from the
//! header the proxy sets (`DARKROOM_CLIENT_IP_HEADER`). Buckets live in each
//! web process: with N instances behind a balancer a client may get up to N
//! times the rate.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderName;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::AppState;
use crate::error::AppError;

/// Per-client rates, per minute; 0 turns one off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateSettings {
    /// Requests of any kind a client may make per second (bursts of twice
    /// that).
    pub requests_per_second: u32,
    /// Jobs a client may create.
    pub jobs_per_minute: u32,
    /// Upload requests a client may make.
    pub uploads_per_minute: u32,
    /// Work a client's uploads may ask for, in megapixel passes: each
    /// (image, recipe) is charged its estimated work plus
    /// [`PER_MESSAGE`] (a 12 MP photo's thumbnail comes to about 20, a
    /// full-size edit to 250 or more).
    pub work_per_minute: u32,
    /// The header a trusted proxy puts the client's address in (its last
    /// entry counts: the one the proxy itself added); `None`: the socket's
    /// peer.
    pub client_ip_header: Option<HeaderName>,
}

impl Default for RateSettings {
    fn default() -> Self {
        Self {
            requests_per_second: 50,
            jobs_per_minute: 60,
            uploads_per_minute: 600,
            work_per_minute: 6_000,
            client_ip_header: None,
        }
    }
}

/// What each (image, recipe) costs beyond the engine's work, in megapixel
/// passes: its S3 transfers, its Postgres statements and the engine's
/// process, about 30 ms of CPU on the machine of the README's benchmarks.
/// Charged so that many tiny images cost what they really do.
pub const PER_MESSAGE: u64 = 12;

/// The process's buckets.
pub struct Rates {
    requests: Option<DefaultKeyedRateLimiter<IpAddr>>,
    jobs: Option<DefaultKeyedRateLimiter<IpAddr>>,
    uploads: Option<DefaultKeyedRateLimiter<IpAddr>>,
    work: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
    held: AtomicUsize,
}

/// Why a request was held back: what ran out, and when to come back.
#[derive(Debug)]
pub struct Limited {
    pub what: &'static str,
    pub retry_after: Duration,
}

impl From<Limited> for AppError {
    fn from(l: Limited) -> Self {
        AppError::TooManyRequests {
            message: format!(
                "too many {} from your address; try again in {} s",
                l.what,
                l.retry_after.as_secs().max(1)
            ),
            retry_after: l.retry_after,
        }
    }
}

fn bucket(per_minute: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

impl Rates {
    pub fn new(settings: &RateSettings) -> Self {
        let per_second = |n: u32| {
            NonZeroU32::new(n).map(|n| {
                let burst = n.saturating_mul(NonZeroU32::new(2).expect("2 is not 0"));
                RateLimiter::keyed(Quota::per_second(n).allow_burst(burst))
            })
        };
        Self {
            requests: per_second(settings.requests_per_second),
            jobs: bucket(settings.jobs_per_minute),
            uploads: bucket(settings.uploads_per_minute),
            work: bucket(settings.work_per_minute),
            clock: DefaultClock::default(),
            held: AtomicUsize::new(0),
        }
    }

    fn take(
        &self,
        limiter: &Option<DefaultKeyedRateLimiter<IpAddr>>,
        client: IpAddr,
        n: u32,
        what: &'static str,
    ) -> Result<(), Limited> {
        let (Some(limiter), Some(n)) = (limiter, NonZeroU32::new(n)) else {
            return Ok(());
        };
        match limiter.check_key_n(&client, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Limited {
                what,
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
            // More than a whole minute's allowance at once: never payable.
            Err(_) => Err(Limited {
                what,
                retry_after: Duration::from_secs(60),
            }),
        }
    }

    /// A place to hold a 429 in, if one is free.
    fn hold(&self) -> Option<Held<'_>> {
        let before = self.held.fetch_add(1, Ordering::Relaxed);
        let held = Held(&self.held);
        (before < MAX_HELD).then_some(held)
    }

    pub fn request(&self, client: IpAddr) -> Result<(), Limited> {
        self.take(&self.requests, client, 1, "requests")
    }

    pub fn job(&self, client: IpAddr) -> Result<(), Limited> {
        self.take(&self.jobs, client, 1, "jobs created")
    }

    pub fn upload(&self, client: IpAddr) -> Result<(), Limited> {
        self.take(&self.uploads, client, 1, "uploads")
    }

    /// Charges `megapixel_passes` of work, all or nothing.
    pub fn work(&self, client: IpAddr, megapixel_passes: u64) -> Result<(), Limited> {
        let n = u32::try_from(megapixel_passes).unwrap_or(u32::MAX);
        self.take(&self.work, client, n, "images to process")
    }

    /// Whether a single charge of `megapixel_passes` can ever be paid.
    pub fn payable(&self, megapixel_passes: u64, settings: &RateSettings) -> bool {
        self.work.is_none() || megapixel_passes <= u64::from(settings.work_per_minute)
    }

    /// Forgets clients whose buckets are full again, so the map stays the
    /// size of the recent clients.
    pub fn forget_idle(&self) {
        for limiter in [&self.requests, &self.jobs, &self.uploads, &self.work]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Answers 429 to a client over its request rate, before any handler runs.
///
/// The answer is held until the client's bucket has room again (at most
/// [`HOLD`]): a client that fires requests as fast as it is answered would
/// otherwise get tens of thousands of 429s a second per connection, each
/// costing as much to answer as a cheap request. Held, each of its
/// connections gets about one answer a second. A few thousand answers are
/// held at most ([`MAX_HELD`]); past that they go at once.
pub async fn limit_requests(
    State(state): State<AppState>,
    Client(client): Client,
    request: Request,
    next: Next,
) -> Response {
    match state.rates.request(client) {
        Ok(()) => next.run(request).await,
        Err(limited) => {
            if let Some(_held) = state.rates.hold() {
                tokio::time::sleep(limited.retry_after.min(HOLD)).await;
            }
            AppError::from(limited).into_response()
        }
    }
}

/// Longest a 429 is held before it is sent.
pub const HOLD: Duration = Duration::from_secs(1);
/// Most 429s held at once per process.
pub const MAX_HELD: usize = 4096;

/// A held 429; dropping it frees its place.
pub struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The address a request is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client(pub IpAddr);

impl FromRequestParts<AppState> for Client {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let forwarded = state
            .settings
            .rates
            .client_ip_header
            .as_ref()
            .and_then(|name| parts.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = forwarded.or(peer).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(Client(key(ip)))
    }
}

/// IPv4 addresses as they are; IPv6 ones by their /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(key(a), key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_bucket_runs_out_and_says_when_to_come_back() {
        let rates = Rates::new(&RateSettings {
            jobs_per_minute: 2,
            ..Default::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        rates.job(ip).unwrap();
        rates.job(ip).unwrap();
        let limited = rates.job(ip).unwrap_err();
        assert!(limited.retry_after > Duration::from_secs(20), "{limited:?}");
        // Another client is not affected.
        rates.job("192.0.2.2".parse().unwrap()).unwrap();
    }
}
