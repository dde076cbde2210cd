//! Delivery signatures. `darkroom-signature` (`t=<unix seconds>,v1=<hex
//! HMAC-SHA256 of "<t>.<body>">`, Stripe's scheme) binds the body to when
//! it was sent, so a receiver that refuses old timestamps refuses replays;
//! `x-cmq-signature` (the body alone) stays for receivers written against
//! it, and can be replayed forever.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &str, body: &str) -> String {
    format!("sha256={}", hmac_hex(secret, &[body.as_bytes()]))
}

/// `t=<unix_secs>,v1=<hex HMAC-SHA256 of "<unix_secs>.<body>">`.
pub(crate) fn timestamped(secret: &str, unix_secs: i64, body: &str) -> String {
    let t = unix_secs.to_string();
    let mac = hmac_hex(secret, &[t.as_bytes(), b".", body.as_bytes()]);
    format!("t={t},v1={mac}")
}

/// Whether `header` is a timestamped signature of `body` under `secret`
/// made within `tolerance` of `now_unix_secs`; any of several `v1`s may
/// match (a receiver rotating secrets).
pub(crate) fn verify(
    secret: &str,
    header: &str,
    body: &str,
    now_unix_secs: i64,
    tolerance: Duration,
) -> bool {
    let Some(t) = field(header, "t")
        .next()
        .and_then(|t| t.parse::<i64>().ok())
    else {
        return false;
    };
    if now_unix_secs.abs_diff(t) > tolerance.as_secs() {
        return false;
    }
    let expected = hmac_hex(secret, &[t.to_string().as_bytes(), b".", body.as_bytes()]);
    field(header, "v1").any(|v| constant_time_eq(v.as_bytes(), expected.as_bytes()))
}

/// The values of `name` in a `k=v,k=v` header.
fn field<'a>(header: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> {
    header
        .split(',')
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTES_5: Duration = Duration::from_secs(300);

    #[test]
    fn a_signature_verifies_within_the_tolerance_only() {
        let header = timestamped("key", 1_000_000, "{}");
        assert!(verify("key", &header, "{}", 1_000_000 + 300, MINUTES_5));
        assert!(!verify("key", &header, "{}", 1_000_000 + 301, MINUTES_5));
    }

    #[test]
    fn another_body_time_or_key_does_not_verify() {
        let header = timestamped("key", 1_000_000, "{}");
        assert!(!verify("key", &header, "{ }", 1_000_000, MINUTES_5));
        assert!(!verify("other", &header, "{}", 1_000_000, MINUTES_5));
        let moved = header.replace("t=1000000", "t=1000001");
        assert!(!verify("key", &moved, "{}", 1_000_000, MINUTES_5));
    }

    #[test]
    fn the_signed_string_is_the_time_a_dot_and_the_body() {
        let header = timestamped("key", 42, "body");
        let mac = hmac_hex("key", &[b"42.body"]);
        assert_eq!(header, format!("t=42,v1={mac}"));
    }
}
