//! The two wire protocols: AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Action>`,
//! today's SDKs) and the query protocol (form-encoded `Action=`, XML
//! answers; older SDKs). Both become one shape before an action runs: the
//! JSON protocol's, a JSON object, so actions are written once; `answer`
//! writes what they return in the protocol the request came in.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::{SqsError, SqsResult};

/// Which protocol a request came in, and so its answer goes out in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Json,
    Query,
}

pub(crate) const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
pub(crate) const XML_NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

/// The action and input of a JSON protocol request.
pub(crate) fn parse_json(target: &str, body: &[u8]) -> SqsResult<(String, Map<String, Value>)> {
    let action = target.strip_prefix("AmazonSQS.").ok_or_else(|| {
        SqsError::invalid_action(target.chars().take(100).collect::<String>().as_str())
    })?;
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(SqsError::malformed(
                    "The request body must be a JSON object.",
                ));
            }
            Err(e) => {
                return Err(SqsError::malformed(format!(
                    "The request body is not JSON: {e}"
                )));
            }
        }
    };
    Ok((action.to_owned(), input))
}

/// The action and input of a query protocol request, from its form body and
/// its query string, with the flattened lists and maps (`Attribute.1.Name`)
/// turned into the JSON protocol's lists and objects.
pub(crate) fn parse_query(
    query: Option<&str>,
    body: &[u8],
) -> SqsResult<(String, Map<String, Value>)> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .chain(form_urlencoded::parse(body));
    // A presigned URL's signature is not the action's input.
    for (k, v) in pairs.filter(|(k, _)| !k.starts_with("X-Amz-")) {
        params.insert(k.into_owned(), v.into_owned());
    }
    let action = params
        .remove("Action")
        .ok_or_else(|| SqsError::missing_parameter("Action"))?;
    params.remove("Version");
    Ok((action, unflatten(&params)))
}

/// Flattened list members whose items are strings.
const STRING_LISTS: &[(&str, &str)] = &[
    ("AttributeName", "AttributeNames"),
    ("MessageAttributeName", "MessageAttributeNames"),
    ("MessageSystemAttributeName", "MessageSystemAttributeNames"),
    ("TagKey", "TagKeys"),
    ("AWSAccountId", "AWSAccountIds"),
    ("ActionName", "Actions"),
];

/// Flattened list members whose items are structures.
const ENTRY_LISTS: &[(&str, &str)] = &[
    ("SendMessageBatchRequestEntry", "Entries"),
    ("DeleteMessageBatchRequestEntry", "Entries"),
    ("ChangeMessageVisibilityBatchRequestEntry", "Entries"),
];

fn unflatten(params: &BTreeMap<String, String>) -> Map<String, Value> {
    let mut out = Map::new();
    // member -> index -> rest of the key -> value
    let mut nested: BTreeMap<&str, BTreeMap<u32, BTreeMap<String, String>>> = BTreeMap::new();
    for (key, value) in params {
        let Some((head, rest)) = key.split_once('.') else {
            out.insert(key.clone(), Value::String(value.clone()));
            continue;
        };
        let (index, tail) = rest.split_once('.').unwrap_or((rest, ""));
        let Ok(index) = index.parse::<u32>() else {
            out.insert(key.clone(), Value::String(value.clone()));
            continue;
        };
        nested
            .entry(head)
            .or_default()
            .entry(index)
            .or_default()
            .insert(tail.to_owned(), value.clone());
    }
    for (head, items) in nested {
        if let Some((_, name)) = STRING_LISTS.iter().find(|(m, _)| *m == head) {
            let list = items
                .into_values()
                .filter_map(|mut f| f.remove(""))
                .map(Value::String)
                .collect();
            out.insert((*name).to_owned(), Value::Array(list));
        } else if let Some((_, name)) = ENTRY_LISTS.iter().find(|(m, _)| *m == head) {
            let list = items
                .into_values()
                .map(|fields| Value::Object(unflatten(&fields)))
                .collect();
            out.insert((*name).to_owned(), Value::Array(list));
        } else {
            // Maps: `Attribute.N.Name/Value`, `Tag.N.Key/Value`,
            // `MessageAttribute.N.Name/Value.*`.
            let (name, key_field) = match head {
                "Attribute" => ("Attributes", "Name"),
                "Tag" | "Tags" => ("Tags", "Key"),
                "MessageAttribute" => ("MessageAttributes", "Name"),
                "MessageSystemAttribute" => ("MessageSystemAttributes", "Name"),
                other => (other, "Name"),
            };
            let mut map = Map::new();
            for mut fields in items.into_values() {
                let Some(key) = fields.remove(key_field) else {
                    continue;
                };
                let value = match fields.remove("Value") {
                    Some(v) => Value::String(v),
                    None => {
                        let sub: BTreeMap<String, String> = fields
                            .into_iter()
                            .filter_map(|(k, v)| Some((k.strip_prefix("Value.")?.to_owned(), v)))
                            .collect();
                        Value::Object(unflatten(&sub))
                    }
                };
                map.insert(key, value);
            }
            out.insert(name.to_owned(), Value::Object(map));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_parameters_become_the_json_shape() {
        let body = "Action=SendMessageBatch&Version=2012-11-05&QueueUrl=http%3A%2F%2Fh%2F0%2Fq\
            &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=one\
            &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=color\
            &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String\
            &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=red\
            &SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two";
        let (action, input) = parse_query(None, body.as_bytes()).unwrap();
        assert_eq!(action, "SendMessageBatch");
        assert_eq!(
            Value::Object(input),
            json!({
                "QueueUrl": "http://h/0/q",
                "Entries": [
                    {"Id": "a", "MessageBody": "one",
                     "MessageAttributes": {"color": {"DataType": "String", "StringValue": "red"}}},
                    {"Id": "b", "MessageBody": "two"},
                ]
            })
        );
        let (_, input) = parse_query(
            Some("Action=CreateQueue&QueueName=q&Attribute.1.Name=DelaySeconds&Attribute.1.Value=5&AttributeName.1=All&Tag.1.Key=team&Tag.1.Value=x"),
            b"",
        )
        .unwrap();
        assert_eq!(
            Value::Object(input),
            json!({"QueueName": "q", "Attributes": {"DelaySeconds": "5"},
                   "AttributeNames": ["All"], "Tags": {"team": "x"}})
        );
    }
}
