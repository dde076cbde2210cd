//! The endpoint's access keys, from `DARKROOM_SQS_ACCESS_KEYS`: each key's
//! secret and its grant (see `grants`).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::grants::Grant;

/// The access keys the endpoint accepts, from `DARKROOM_SQS_ACCESS_KEYS`:
/// comma-separated `ACCESS_KEY_ID:SECRET`, each optionally followed by
/// `:` and its grant (see `grants`).
#[derive(Clone, Default)]
pub struct AccessKeys(HashMap<String, Key>);

#[derive(Clone)]
struct Key {
    secret: String,
    grant: Grant,
}

impl AccessKeys {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn secret(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(|k| k.secret.as_str())
    }

    pub(crate) fn grant(&self, id: &str) -> Option<&Grant> {
        self.0.get(id).map(|k| &k.grant)
    }
}

impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids and grants only: secrets never reach a log.
        f.debug_map()
            .entries(self.0.iter().map(|(id, k)| (id, &k.grant)))
            .finish()
    }
}

impl FromStr for AccessKeys {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for entry in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((id, rest)) = entry.split_once(':') else {
                return Err(format!(
                    "`{}` is not ACCESS_KEY_ID:SECRET",
                    entry.chars().take(20).collect::<String>()
                ));
            };
            let (secret, grant) = split_grant(rest);
            if id.is_empty() || secret.len() < 8 {
                return Err(format!(
                    "access key `{id}`: the id must not be empty and the secret must be at least 8 characters"
                ));
            }
            let grant = match grant {
                Some(g) => Grant::parse(g).map_err(|e| format!("access key `{id}`: {e}"))?,
                None => Grant::default(),
            };
            let secret = secret.to_owned();
            if keys.insert(id.to_owned(), Key { secret, grant }).is_some() {
                return Err(format!("access key `{id}` is listed twice"));
            }
        }
        Ok(Self(keys))
    }
}

/// A key's secret and grant. Secrets could always hold `:`, so the grant
/// starts at the first `:` followed by a field's name and `=` (`queues=`,
/// `actions=`, or a misspelt one that is then refused): `ID:se:cret` keeps
/// its secret, and `actions=sqs:SendMessage` its `sqs:`.
fn split_grant(rest: &str) -> (&str, Option<&str>) {
    let starts_field = |tail: &str| {
        let name = tail.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        name.len() < tail.len() && name.starts_with('=')
    };
    let at = rest
        .match_indices(':')
        .map(|(i, _)| i)
        .find(|&i| starts_field(&rest[i + 1..]));
    match at {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys_parse_pairs_and_refuse_short_secrets() {
        let keys: AccessKeys = "AKID1:secret-one, AKID2:secret-two".parse().unwrap();
        assert_eq!(keys.secret("AKID2"), Some("secret-two"));
        assert!("AKID1".parse::<AccessKeys>().is_err());
        assert!("AKID1:short".parse::<AccessKeys>().is_err());
        assert!(!format!("{keys:?}").contains("secret"));
    }

    #[test]
    fn access_keys_take_a_grant_after_the_secret_and_keep_colons_in_secrets() {
        let keys: AccessKeys =
            "PLAIN:se:cret-one,LIMITED:secret-two:queues=orders-*;actions=sqs:Purge*"
                .parse()
                .unwrap();
        assert_eq!(keys.secret("PLAIN"), Some("se:cret-one"));
        assert_eq!(keys.grant("PLAIN"), Some(&Grant::default()));
        assert_eq!(keys.secret("LIMITED"), Some("secret-two"));
        let limited = keys.grant("LIMITED").unwrap();
        assert!(limited.allows("PurgeQueue", "orders-eu"));
        assert!(!limited.allows("PurgeQueue", "billing"));
        assert!(!limited.allows("SendMessage", "orders-eu"));
        assert!("K:secret-two:queue=orders".parse::<AccessKeys>().is_err());
        assert!("K:secret-two,K:secret-three".parse::<AccessKeys>().is_err());
        assert!(!format!("{keys:?}").contains("secret"));
    }
}
