//! Signed links: a file or progress stream opened by a plain URL (an
//! `<img>`, a download, an `EventSource`) without the job's token in it.
//!
//! URLs are kept by proxies' logs, browser histories and bookmarks, where a
//! job token would open the job for as long as it lives. A link instead
//! carries `expires` (unix seconds) and `sig`, the HMAC-SHA256 of its path
//! and expiry under the server's link key: it opens that one path, for
//! [`LINK_LIFETIME`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::ensure;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// How long a signed link opens its path: long enough for a page to use
/// the links it was given, short enough that one copied from a log is stale.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The key links are signed with. Web processes behind one balancer need the
/// same (`DARKROOM_LINK_SECRET`): a link one signs, another must accept.
#[derive(Clone)]
pub struct LinkKey {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl Default for LinkKey {
    fn default() -> Self {
        Self::random()
    }
}

impl LinkKey {
    /// A key of this process alone: its links open nowhere else.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Self::from_bytes(&secret)
    }

    /// The key of a configured secret; a short one, which could be guessed
    /// from a link, is refused.
    pub fn from_secret(secret: &str) -> anyhow::Result<Self> {
        ensure!(
            secret.len() >= 32,
            "DARKROOM_LINK_SECRET must be at least 32 random characters"
        );
        Ok(Self::from_bytes(secret.as_bytes()))
    }

    fn from_bytes(secret: &[u8]) -> Self {
        let mac = Hmac::new_from_slice(secret).expect("HMAC takes a key of any length");
        Self { mac }
    }

    /// `path` signed until `expires` (unix seconds).
    pub fn link(&self, path: &str, expires: u64) -> String {
        format!(
            "{path}?expires={expires}&sig={}",
            self.signature(path, expires)
        )
    }

    /// Whether `sig` signs `path` until `expires`, and that is still ahead.
    pub fn opens(&self, path: &str, expires: u64, sig: &str) -> bool {
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        // Compared in constant time by `verify_slice`.
        let genuine = self.mac_of(path, expires).verify_slice(&sig).is_ok();
        genuine && unix_now() <= expires
    }

    fn signature(&self, path: &str, expires: u64) -> String {
        hex::encode(self.mac_of(path, expires).finalize().into_bytes())
    }

    fn mac_of(&self, path: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(format!("{path}\n{expires}").as_bytes());
        mac
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_only_its_own_path_until_it_expires() {
        let key = LinkKey::random();
        let expires = unix_now() + LINK_LIFETIME.as_secs();
        let link = key.link("/api/jobs/a/archive", expires);
        let sig = link.rsplit_once("sig=").unwrap().1;
        assert!(key.opens("/api/jobs/a/archive", expires, sig));
        assert!(!key.opens("/api/jobs/b/archive", expires, sig));
        assert!(!key.opens("/api/jobs/a/archive", expires + 1, sig));
        assert!(!LinkKey::random().opens("/api/jobs/a/archive", expires, sig));
        let past = unix_now() - 1;
        let stale = key.link("/api/jobs/a/archive", past);
        let sig = stale.rsplit_once("sig=").unwrap().1;
        assert!(!key.opens("/api/jobs/a/archive", past, sig));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(LinkKey::from_secret("too short").is_err());
        assert!(LinkKey::from_secret(&"x".repeat(32)).is_ok());
    }
}
