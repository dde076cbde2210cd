//! SQS messages on the native queue: bodies, message attributes and the
//! digests SDKs check.
//!
//! A native message is a text body. What SQS adds to one — message
//! attributes, the deduplication id, the group, the trace header — travels
//! in front of the body, in an envelope: `\u{1}` + JSON + `\u{1}` + body.
//! So everything the queue does to a body (shards, dead letters, redrive,
//! rewind) carries them along, and a message with none of them is stored
//! as its bare body, as native clients see it. SQS bodies cannot contain
//! U+0001, and serde_json escapes it inside the JSON, so the envelope is
//! unambiguous.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::contents;
use super::error::{SqsError, SqsResult};

const MARK: char = '\u{1}';

/// A message attribute as SQS has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attribute {
    #[serde(rename = "t")]
    pub(crate) data_type: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub(crate) string: Option<String>,
    /// Base64, as it travels on the wire.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub(crate) binary: Option<String>,
}

impl Attribute {
    pub(crate) fn string(value: &str) -> Self {
        Self {
            data_type: "String".to_owned(),
            string: Some(value.to_owned()),
            binary: None,
        }
    }
}

/// What SQS keeps beside a body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "a", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) attributes: BTreeMap<String, Attribute>,
    /// MessageSystemAttributes (SQS knows one: AWSTraceHeader).
    #[serde(rename = "y", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) system: BTreeMap<String, Attribute>,
    #[serde(rename = "g", default, skip_serializing_if = "Option::is_none")]
    pub(crate) group: Option<String>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub(crate) dedup_id: Option<String>,
}

impl Envelope {
    fn is_empty(&self) -> bool {
        *self == Envelope::default()
    }

    /// The stored form of `body` with this envelope.
    pub(crate) fn wrap(&self, body: &str) -> String {
        if self.is_empty() && !body.starts_with(MARK) {
            return body.to_owned();
        }
        let head = serde_json::to_string(self).expect("an envelope always serializes");
        format!("{MARK}{head}{MARK}{body}")
    }

    /// The envelope and body of a stored message.
    pub(crate) fn unwrap(stored: &str) -> (Envelope, &str) {
        if let Some(rest) = stored.strip_prefix(MARK)
            && let Some((head, body)) = rest.split_once(MARK)
            && let Ok(envelope) = serde_json::from_str(head)
        {
            return (envelope, body);
        }
        (Envelope::default(), stored)
    }
}

/// Reads and checks `MessageAttributes` (or `MessageSystemAttributes`) of a
/// send: at most 10, names and types as SQS allows them.
pub(crate) fn parse_attributes(
    value: Option<&Value>,
    system: bool,
) -> SqsResult<BTreeMap<String, Attribute>> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(map) = value else {
        return Err(SqsError::invalid_parameter(
            "MessageAttributes must be a map.",
        ));
    };
    if map.len() > 10 {
        return Err(SqsError::invalid_parameter(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
            map.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (name, v) in map {
        if system && name != "AWSTraceHeader" {
            return Err(SqsError::invalid_parameter(format!(
                "Message system attribute name '{name}' is invalid."
            )));
        }
        check_attribute_name(name)?;
        out.insert(name.clone(), parse_attribute(name, v)?);
    }
    Ok(out)
}

/// Reads and checks the value of the attribute `name` against its type.
fn parse_attribute(name: &str, v: &Value) -> SqsResult<Attribute> {
    let field = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let data_type = field("DataType").filter(|t| !t.is_empty()).ok_or_else(|| {
        SqsError::invalid_parameter(format!(
            "The message attribute '{name}' must contain non-empty message attribute type."
        ))
    })?;
    let base = data_type
        .split_once('.')
        .map_or(data_type.as_str(), |(b, _)| b);
    if data_type.len() > 256 || !matches!(base, "String" | "Number" | "Binary") {
        return Err(SqsError::invalid_parameter(format!(
            "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
        )));
    }
    if base == "Binary" {
        let binary = binary_value(name, field("BinaryValue"))?;
        return Ok(Attribute {
            data_type,
            string: None,
            binary: Some(binary),
        });
    }
    let string = string_value(name, base, field("StringValue"))?;
    Ok(Attribute {
        data_type,
        string: Some(string),
        binary: None,
    })
}

/// Checks a Binary attribute's value: present and base64.
fn binary_value(name: &str, value: Option<String>) -> SqsResult<String> {
    let b = value.filter(|b| !b.is_empty()).ok_or_else(|| {
        SqsError::invalid_parameter(format!(
            "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
        ))
    })?;
    BASE64.decode(&b).map_err(|_| {
        SqsError::invalid_parameter(format!(
            "The message attribute '{name}' has a BinaryValue that is not base64."
        ))
    })?;
    Ok(b)
}

/// Checks a String or Number attribute's value (`base` is which): present,
/// a number for a Number, and only characters a body may hold.
fn string_value(name: &str, base: &str, value: Option<String>) -> SqsResult<String> {
    let s = value.filter(|s| !s.is_empty()).ok_or_else(|| {
        SqsError::invalid_parameter(format!(
            "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{base}'."
        ))
    })?;
    if base == "Number" && s.trim().parse::<f64>().is_err() {
        return Err(SqsError::invalid_parameter(format!(
            "Can't cast the value of message (user) attribute '{name}' to a number."
        )));
    }
    contents::check_body(&s).map_err(|_| {
        SqsError::invalid_parameter(format!(
            "The message attribute '{name}' contains characters SQS does not allow."
        ))
    })?;
    Ok(s)
}

fn check_attribute_name(name: &str) -> SqsResult<()> {
    let lower = name.to_ascii_lowercase();
    // Letters and digits of any script, as SQS takes them.
    let valid = !name.is_empty()
        && name.chars().count() <= 256
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && ((!lower.starts_with("aws.") && !lower.starts_with("amazon."))
            || name == "AWSTraceHeader");
    if valid {
        Ok(())
    } else {
        Err(SqsError::invalid_parameter(format!(
            "The message attribute name '{}' is invalid. Attribute name can contain A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters.",
            name.chars().take(100).collect::<String>()
        )))
    }
}

/// What the attributes count toward the message size limit, as SQS counts:
/// name, type and value.
pub(crate) fn attributes_size(attributes: &BTreeMap<String, Attribute>) -> usize {
    attributes
        .iter()
        .map(|(name, a)| {
            let value = match (&a.string, &a.binary) {
                (Some(s), _) => s.len(),
                (None, Some(b)) => BASE64.decode(b).map_or(b.len(), |d| d.len()),
                (None, None) => 0,
            };
            name.len() + a.data_type.len() + value
        })
        .sum()
}

pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// MD5OfMessageAttributes as SQS computes it: the attributes in name order,
/// each as length-prefixed name, type, a transport byte (1 string, 2
/// binary) and length-prefixed value.
pub(crate) fn md5_of_attributes(attributes: &BTreeMap<String, Attribute>) -> String {
    fn field(md5: &mut Md5, bytes: &[u8]) {
        md5.update((bytes.len() as u32).to_be_bytes());
        md5.update(bytes);
    }
    let mut md5 = Md5::new();
    for (name, a) in attributes {
        field(&mut md5, name.as_bytes());
        field(&mut md5, a.data_type.as_bytes());
        match (&a.string, &a.binary) {
            (Some(s), _) => {
                md5.update([1u8]);
                field(&mut md5, s.as_bytes());
            }
            (None, Some(b)) => {
                md5.update([2u8]);
                field(&mut md5, &BASE64.decode(b).unwrap_or_default());
            }
            (None, None) => md5.update([1u8]),
        }
    }
    hex::encode(md5.finalize())
}

/// The attributes as the JSON protocol writes them.
pub(crate) fn attributes_json(attributes: &BTreeMap<String, Attribute>) -> Value {
    let map: Map<String, Value> = attributes
        .iter()
        .map(|(name, a)| {
            let mut v = json!({ "DataType": a.data_type });
            if let Some(s) = &a.string {
                v["StringValue"] = json!(s);
            }
            if let Some(b) = &a.binary {
                v["BinaryValue"] = json!(b);
            }
            (name.clone(), v)
        })
        .collect();
    Value::Object(map)
}

/// The attributes a receive asked for by `names` (`All`, `.*`, `prefix.*`
/// or exact names).
pub(crate) fn select_attributes(
    attributes: &BTreeMap<String, Attribute>,
    names: &[String],
) -> BTreeMap<String, Attribute> {
    let wanted = |name: &str| {
        names.iter().any(|n| {
            n == "All"
                || n == "*"
                || n == ".*"
                || n == name
                || n.strip_suffix(".*")
                    .is_some_and(|prefix| name.starts_with(prefix))
        })
    };
    attributes
        .iter()
        .filter(|(name, _)| wanted(name))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_bare_bodies_stay_bare() {
        assert_eq!(Envelope::default().wrap("plain"), "plain");
        assert_eq!(Envelope::unwrap("plain"), (Envelope::default(), "plain"));
        let mut e = Envelope {
            dedup_id: Some("d1".into()),
            ..Default::default()
        };
        e.attributes.insert(
            "k".into(),
            Attribute {
                data_type: "String".into(),
                string: Some("v\u{1}".into()),
                binary: None,
            },
        );
        let stored = e.wrap("body \u{1} with a mark");
        assert_eq!(Envelope::unwrap(&stored), (e, "body \u{1} with a mark"));
    }

    /// The digest AWS's SDKs compute for `{"color": String "red"}`: the
    /// Java SDK's MessageMD5ChecksumHandler encoding, computed by hand.
    #[test]
    fn attribute_digest_is_length_prefixed() {
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "color".to_owned(),
            Attribute {
                data_type: "String".into(),
                string: Some("red".into()),
                binary: None,
            },
        );
        let mut bytes = Vec::new();
        for (part, transport) in [("color", None), ("String", Some(1u8)), ("red", None)] {
            if let Some(t) = transport {
                bytes.extend_from_slice(&6u32.to_be_bytes());
                bytes.extend_from_slice(part.as_bytes());
                bytes.push(t);
                continue;
            }
            bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        assert_eq!(md5_of_attributes(&attrs), md5_hex(&bytes));
    }

    #[test]
    fn attribute_names_and_types_are_checked() {
        let ok = json!({"a.b": {"DataType": "Number.int", "StringValue": "12"}});
        assert_eq!(parse_attributes(Some(&ok), false).unwrap().len(), 1);
        for bad in [
            json!({"AWS.x": {"DataType": "String", "StringValue": "v"}}),
            json!({"a..b": {"DataType": "String", "StringValue": "v"}}),
            json!({"a": {"DataType": "Number", "StringValue": "twelve"}}),
            json!({"a": {"DataType": "Blob", "StringValue": "v"}}),
            json!({"a": {"DataType": "Binary", "BinaryValue": "***"}}),
            json!({"a": {"DataType": "String", "StringValue": ""}}),
        ] {
            assert!(parse_attributes(Some(&bad), false).is_err(), "{bad}");
        }
    }

    #[test]
    fn select_by_name_prefix_or_all() {
        let a = Attribute {
            data_type: "String".into(),
            string: Some("v".into()),
            binary: None,
        };
        let attrs: BTreeMap<_, _> = ["x.one", "x.two", "y"]
            .iter()
            .map(|n| (n.to_string(), a.clone()))
            .collect();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(select_attributes(&attrs, &names(&["All"])).len(), 3);
        assert_eq!(select_attributes(&attrs, &names(&["x.*"])).len(), 2);
        assert_eq!(select_attributes(&attrs, &names(&["y", "z"])).len(), 1);
        assert!(select_attributes(&attrs, &[]).is_empty());
    }
}
