//! What a key may do: the grant that may follow its secret in
//! `DARKROOM_SQS_ACCESS_KEYS`, as
//! `ID:SECRET:queues=orders-*|billing;actions=SendMessage|Receive*`.
//!
//! Patterns read as IAM's do: action names are SQS's API action names
//! (`sqs:` may lead, case does not matter), queue names are exact, and a
//! trailing `*` matches any rest, `*` alone everything. A missing field
//! grants everything of its kind, so a plain `ID:SECRET` may use every
//! queue except the product's own: a `darkroom.` queue is granted only by
//! its exact name, never by a pattern.

use std::fmt;

/// Queues whose names start so are the product's: only an exact name in a
/// grant reaches them.
pub(crate) const RESERVED_PREFIX: &str = "darkroom.";

/// SQS's IAM actions. The batch actions are not among them: as in IAM,
/// each is granted by its single action (see [`permission`]).
const ACTIONS: &[&str] = &[
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibility",
    "CreateQueue",
    "DeleteMessage",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "RemovePermission",
    "SendMessage",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
];

/// The actions SQS also takes in batches (`SendMessageBatch`).
const BATCHED: &[&str] = &["SendMessage", "DeleteMessage", "ChangeMessageVisibility"];

/// The IAM action that grants API action `action`; `None` for one SQS
/// does not have.
pub(crate) fn permission(action: &str) -> Option<&'static str> {
    let single = match action.strip_suffix("Batch") {
        Some(single) if BATCHED.contains(&single) => single,
        Some(_) => return None,
        None => action,
    };
    ACTIONS.iter().copied().find(|a| *a == single)
}

pub(crate) fn is_reserved(queue: &str) -> bool {
    queue.starts_with(RESERVED_PREFIX)
}

/// A name, or the start of names when it ends in `*`.
#[derive(Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn parse(s: &str) -> Result<Self, String> {
        let stem = s.strip_suffix('*').unwrap_or(s);
        if s.is_empty() || stem.contains('*') || s.contains(char::is_whitespace) {
            return Err(format!(
                "`{s}` is not a name or a name's start followed by `*`"
            ));
        }
        Ok(if stem.len() < s.len() {
            Pattern::Prefix(stem.to_owned())
        } else {
            Pattern::Exact(s.to_owned())
        })
    }

    fn matches_queue(&self, queue: &str) -> bool {
        match self {
            Pattern::Exact(name) => name == queue,
            Pattern::Prefix(start) => !is_reserved(queue) && queue.starts_with(start.as_str()),
        }
    }

    /// IAM compares action names without regard to case.
    fn matches_action(&self, action: &str) -> bool {
        let action = action.as_bytes();
        match self {
            Pattern::Exact(name) => name.as_bytes().eq_ignore_ascii_case(action),
            Pattern::Prefix(start) => action
                .get(..start.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(start.as_bytes())),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(name) => f.write_str(name),
            Pattern::Prefix(start) => write!(f, "{start}*"),
        }
    }
}

/// The queues and actions a key may use.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    queues: Vec<Pattern>,
    actions: Vec<Pattern>,
}

impl Default for Grant {
    /// A plain key's: everything but the reserved queues.
    fn default() -> Self {
        let everything = || vec![Pattern::Prefix(String::new())];
        Self {
            queues: everything(),
            actions: everything(),
        }
    }
}

impl Grant {
    /// Reads `queues=...;actions=...`, either field optional.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut grant = Grant::default();
        let (mut queues, mut actions) = (None, None);
        for field in s.split(';').map(str::trim).filter(|f| !f.is_empty()) {
            let (slot, values) = match field.split_once('=') {
                Some(("queues", v)) => (&mut queues, v),
                Some(("actions", v)) => (&mut actions, v),
                _ => {
                    return Err(format!("`{field}` is neither queues=... nor actions=..."));
                }
            };
            if slot.replace(values).is_some() {
                return Err(format!("`{field}`: each field may be given once"));
            }
        }
        if let Some(values) = queues {
            grant.queues = list(values).map(Pattern::parse).collect::<Result<_, _>>()?;
        }
        if let Some(values) = actions {
            grant.actions = list(values).map(action_pattern).collect::<Result<_, _>>()?;
        }
        Ok(grant)
    }

    /// Whether API action `action` (its IAM action) may act on `queue`.
    pub(crate) fn allows(&self, action: &str, queue: &str) -> bool {
        self.allows_action(action) && self.queues.iter().any(|p| p.matches_queue(queue))
    }

    /// Whether the key may use `action` on some queue; actions that name
    /// none (ListQueues) are checked so, and then on each name they return.
    pub(crate) fn allows_action(&self, action: &str) -> bool {
        permission(action).is_some_and(|a| self.actions.iter().any(|p| p.matches_action(a)))
    }
}

/// A field's `|`-separated values; an empty one is refused as a pattern.
fn list(values: &str) -> impl Iterator<Item = &str> {
    values.split('|').map(str::trim)
}

/// An action pattern without IAM's optional `sqs:`, refused when it names
/// no SQS action: a misspelt action would otherwise grant nothing, silently.
fn action_pattern(value: &str) -> Result<Pattern, String> {
    let bare = match value.get(..4) {
        Some(head) if head.eq_ignore_ascii_case("sqs:") => &value[4..],
        _ => value,
    };
    let pattern = Pattern::parse(bare)?;
    if ACTIONS.iter().any(|a| pattern.matches_action(a)) {
        return Ok(pattern);
    }
    let hint = match bare.strip_suffix("Batch") {
        Some(single) if permission(single).is_some() => {
            format!(" ({bare} is granted by {single}, as in IAM)")
        }
        _ => String::new(),
    };
    Err(format!("`{value}` names no SQS action{hint}"))
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |list: &[Pattern]| {
            list.iter()
                .map(Pattern::to_string)
                .collect::<Vec<_>>()
                .join("|")
        };
        write!(
            f,
            "queues={};actions={}",
            join(&self.queues),
            join(&self.actions)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_grant_reaches_every_queue_but_the_reserved_ones() {
        let plain = Grant::default();
        assert!(plain.allows("SetQueueAttributes", "orders"));
        assert!(plain.allows("SendMessageBatch", "orders"));
        assert!(!plain.allows("SendMessage", "darkroom.requests"));
        assert!(!plain.allows("SetQueueAttributes", "darkroom.responses"));
    }

    #[test]
    fn only_an_exact_name_grants_a_reserved_queue() {
        for queues in ["*", "darkroom.*", "darkroom.requests*", "darkroom.req*"] {
            let grant = Grant::parse(&format!("queues={queues}")).unwrap();
            assert!(
                !grant.allows("SendMessage", "darkroom.requests"),
                "{queues}"
            );
        }
        let grant = Grant::parse("queues=darkroom.requests|orders-*").unwrap();
        assert!(grant.allows("SendMessage", "darkroom.requests"));
        assert!(!grant.allows("SendMessage", "darkroom.requests.dead"));
        assert!(grant.allows("SendMessage", "orders-eu"));
        assert!(!grant.allows("SendMessage", "billing"));
    }

    #[test]
    fn actions_read_as_iam_reads_them() {
        let grant = Grant::parse("actions=sqs:sendmessage|Receive*;queues=q").unwrap();
        assert!(grant.allows("SendMessage", "q"));
        assert!(grant.allows("SendMessageBatch", "q"));
        assert!(grant.allows("ReceiveMessage", "q"));
        assert!(!grant.allows("DeleteMessage", "q"));
        assert!(!grant.allows_action("ListQueues"));
        assert!(!grant.allows("NoSuchAction", "q"));
        assert!(!Grant::default().allows("PurgeQueueBatch", "q"));
    }

    #[test]
    fn malformed_grants_are_refused() {
        for bad in [
            "queue=orders",
            "queues=",
            "queues=a|",
            "queues=or*ders",
            "queues=a;queues=b",
            "actions=SendMesage",
            "actions=SendMessageBatch",
            "actions=Foo*",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
        let err = Grant::parse("actions=SendMessageBatch").unwrap_err();
        assert!(err.contains("granted by SendMessage"), "{err}");
    }
}
