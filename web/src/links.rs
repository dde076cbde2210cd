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
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a signed link opens its path: long enough for a page to use
/// the links it was given, short enough that one copied from a log is stale.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// SHA-256's block: HMAC pads its key to it.
const BLOCK: usize = 64;

/// The key links are signed with. Web processes behind one balancer need the
/// same (`DARKROOM_LINK_SECRET`): a link one signs, another must accept.
#[derive(Clone)]
pub struct LinkKey {
    block: [u8; BLOCK],
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
        let mut block = [0u8; BLOCK];
        if secret.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        Self { block }
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
        let expected = self.signature(path, expires);
        let genuine = bool::from(expected.as_bytes().ct_eq(sig.as_bytes()));
        genuine && unix_now() <= expires
    }

    fn signature(&self, path: &str, expires: u64) -> String {
        let mac = hmac_sha256(&self.block, format!("{path}\n{expires}").as_bytes());
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under a key already padded to a
/// block; built on `sha2`, which the crate has, rather than one more crate.
fn hmac_sha256(key: &[u8; BLOCK], message: &[u8]) -> [u8; 32] {
    let pad = |byte: u8| key.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: a short key.
        let key = LinkKey::from_bytes(b"Jefe");
        assert_eq!(
            hex(&hmac_sha256(&key.block, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block is hashed first.
        let key = LinkKey::from_bytes(&[0xaa; 131]);
        assert_eq!(
            hex(&hmac_sha256(
                &key.block,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

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
