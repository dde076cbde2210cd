//! Which subscriptions a published message goes to: CMQ's two filters.
//!
//! - **Tags**: a subscription lists up to 5 tags. One with none takes every
//!   message; one with tags takes the messages that carry at least one of
//!   them, and never an untagged message.
//! - **Routing keys**: a subscription lists binding keys, words separated by
//!   dots, where `*` stands for exactly one word and `#` for zero or more
//!   (RabbitMQ's topic exchange). A message's routing key must match one of
//!   them.

/// Most tags on a subscription or a message, as CMQ allows.
pub const MAX_TAGS: usize = 5;

/// Whether a subscription with `filter_tags` takes a message tagged `tags`.
pub(crate) fn tags_match(filter_tags: &[String], tags: &[String]) -> bool {
    filter_tags.is_empty() || tags.iter().any(|t| filter_tags.contains(t))
}

/// Whether `routing_key` matches `binding_key`.
pub(crate) fn key_matches(binding_key: &str, routing_key: &str) -> bool {
    matches(&words(binding_key), &words(routing_key))
}

/// The words of a key: none in the empty key; empty words between two dots
/// count.
fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// Whether any of `binding_keys` matches `routing_key`.
pub(crate) fn any_key_matches(binding_keys: &[String], routing_key: Option<&str>) -> bool {
    routing_key.is_some_and(|key| binding_keys.iter().any(|b| key_matches(b, key)))
}

fn matches(pattern: &[&str], words: &[&str]) -> bool {
    match pattern.split_first() {
        None => words.is_empty(),
        // `#` takes zero words, or one and stays.
        Some((&"#", rest)) => {
            matches(rest, words) || (!words.is_empty() && matches(pattern, &words[1..]))
        }
        Some((&p, rest)) => match words.split_first() {
            Some((&w, more)) if p == "*" || p == w => matches(rest, more),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tag_filter_table() {
        let cases: &[(&[&str], &[&str], bool)] = &[
            (&[], &[], true),     // no filter: every message
            (&[], &["a"], true),  // no filter: tagged ones too
            (&["a"], &[], false), // tagged subscription ignores untagged messages
            (&["a"], &["a"], true),
            (&["a", "b"], &["b", "c"], true), // any one tag in common
            (&["a", "b"], &["c"], false),
            (&["A"], &["a"], false), // tags are case-sensitive
        ];
        for (filter, message, want) in cases {
            assert_eq!(
                tags_match(&tags(filter), &tags(message)),
                *want,
                "{filter:?} {message:?}"
            );
        }
    }

    #[test]
    fn routing_key_table() {
        let cases = [
            ("a.b.c", "a.b.c", true),
            ("a.b.c", "a.b", false),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.c", false), // * is exactly one word
            ("a.*", "a.b.c", false),
            ("#", "a.b.c", true), // # alone matches everything
            ("#", "", true),      // even the empty key
            ("#", "a", true),
            ("a.#", "a", true), // # may be zero words
            ("a.#", "a.b.c", true),
            ("a.#.b", "a.b", true),
            ("a.#.b", "a.x.y.b", true),
            ("a.#.b", "a.x.y.c", false),
            ("#.b", "b", true),
            ("#.b", "a.b", true),
            ("#.b", "a.c", false),
            ("*.#", "", false),     // * needs a word
            ("*", "", false),       // the empty key has no words
            ("a..b", "a..b", true), // empty words are words
            ("a.*.b", "a..b", true),
            ("a.b", "a.b.", false),
            ("#.#", "a", true),
        ];
        for (binding, key, want) in cases {
            assert_eq!(key_matches(binding, key), want, "{binding} vs {key}");
        }
    }

    #[test]
    fn message_without_routing_key_matches_nothing() {
        assert!(!any_key_matches(&tags(&["#"]), None));
        assert!(any_key_matches(&tags(&["x.*", "a.#"]), Some("a.b")));
    }
}
