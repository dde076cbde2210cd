//! The two wire protocols: AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Action>`,
//! today's SDKs) and the query protocol (form-encoded `Action=`, XML
//! answers; older SDKs). Both become one shape before an action runs: the
//! JSON protocol's, a JSON object, so actions are written once.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::Writer;
use quick_xml::events::BytesText;
use serde_json::{Map, Value};

use super::error::{SqsError, SqsResult};

/// Which protocol a request came in, and so its answer goes out in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Json,
    Query,
}

const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const XML_NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

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
    for (k, v) in pairs {
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

/// The answer to a request that succeeded.
pub(crate) fn success(
    protocol: Protocol,
    action: &str,
    output: Map<String, Value>,
    request_id: &str,
) -> Response {
    match protocol {
        Protocol::Json => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(JSON_CONTENT_TYPE),
                ),
                request_id_header(request_id),
            ],
            Value::Object(output).to_string(),
        )
            .into_response(),
        Protocol::Query => {
            let mut w = Writer::new(Vec::new());
            let result = w
                .create_element(format!("{action}Response"))
                .with_attribute(("xmlns", XML_NAMESPACE))
                .write_inner_content(|w| {
                    // Present even when empty: botocore looks for it.
                    w.create_element(format!("{action}Result"))
                        .write_inner_content(|w| write_fields(w, action, &output))?;
                    write_metadata(w, request_id)
                })
                .map(|_| ());
            xml_response(StatusCode::OK, result.map(|()| w.into_inner()), request_id)
        }
    }
}

/// The answer to a request that failed.
pub(crate) fn failure(protocol: Protocol, error: &SqsError, request_id: &str) -> Response {
    match protocol {
        Protocol::Json => {
            let body = serde_json::json!({
                "__type": format!("com.amazonaws.sqs#{}", error.shape),
                "message": error.message,
            });
            let query_error = format!("{};{}", error.code, error.fault.as_str());
            let mut response = (
                error.status,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(JSON_CONTENT_TYPE),
                    ),
                    request_id_header(request_id),
                ],
                body.to_string(),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&query_error) {
                response.headers_mut().insert("x-amzn-query-error", v);
            }
            response
        }
        Protocol::Query => {
            let mut w = Writer::new(Vec::new());
            let result = w
                .create_element("ErrorResponse")
                .with_attribute(("xmlns", XML_NAMESPACE))
                .write_inner_content(|w| {
                    w.create_element("Error").write_inner_content(|w| {
                        text(w, "Type", error.fault.as_str())?;
                        text(w, "Code", error.code)?;
                        text(w, "Message", &error.message)?;
                        w.create_element("Detail").write_empty()?;
                        Ok(())
                    })?;
                    text(w, "RequestId", request_id)
                })
                .map(|_| ());
            xml_response(error.status, result.map(|()| w.into_inner()), request_id)
        }
    }
}

fn request_id_header(request_id: &str) -> (header::HeaderName, HeaderValue) {
    (
        header::HeaderName::from_static("x-amzn-requestid"),
        HeaderValue::from_str(request_id).unwrap_or(HeaderValue::from_static("-")),
    )
}

fn xml_response(status: StatusCode, body: std::io::Result<Vec<u8>>, request_id: &str) -> Response {
    match body {
        Ok(body) => (
            status,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/xml")),
                request_id_header(request_id),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot write an SQS XML answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

type XmlResult = std::io::Result<()>;

fn text(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> XmlResult {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn write_metadata(w: &mut Writer<Vec<u8>>, request_id: &str) -> XmlResult {
    w.create_element("ResponseMetadata")
        .write_inner_content(|w| text(w, "RequestId", request_id))?;
    Ok(())
}

/// The element a list's members are written as, in `action`'s answer.
fn member_name(action: &str, list: &str) -> String {
    match list {
        "QueueUrls" | "queueUrls" => "QueueUrl".into(),
        "Messages" => "Message".into(),
        "Failed" => "BatchResultErrorEntry".into(),
        "Successful" => format!("{}ResultEntry", action),
        "Results" => format!("{action}ResultEntry"),
        other => other.trim_end_matches('s').to_owned(),
    }
}

fn write_fields(w: &mut Writer<Vec<u8>>, action: &str, fields: &Map<String, Value>) -> XmlResult {
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("Attributes", Value::Object(map)) => write_map(w, "Attribute", "Name", map)?,
            ("Tags", Value::Object(map)) => write_map(w, "Tag", "Key", map)?,
            ("MessageAttributes", Value::Object(map)) => {
                for (key, v) in map {
                    w.create_element("MessageAttribute")
                        .write_inner_content(|w| {
                            text(w, "Name", key)?;
                            w.create_element("Value").write_inner_content(|w| match v {
                                Value::Object(inner) => write_fields(w, action, inner),
                                other => text(w, "StringValue", &scalar(other)),
                            })?;
                            Ok(())
                        })?;
                }
            }
            (list, Value::Array(items)) => {
                let member = member_name(action, list);
                for item in items {
                    match item {
                        Value::Object(inner) => {
                            w.create_element(member.as_str())
                                .write_inner_content(|w| write_fields(w, action, inner))?;
                        }
                        other => text(w, &member, &scalar(other))?,
                    }
                }
            }
            (name, Value::Object(inner)) => {
                w.create_element(name)
                    .write_inner_content(|w| write_fields(w, action, inner))?;
            }
            (name, other) => text(w, name, &scalar(other))?,
        }
    }
    Ok(())
}

fn write_map(
    w: &mut Writer<Vec<u8>>,
    element: &str,
    key_name: &str,
    map: &Map<String, Value>,
) -> XmlResult {
    for (key, value) in map {
        w.create_element(element).write_inner_content(|w| {
            text(w, key_name, key)?;
            text(w, "Value", &scalar(value))
        })?;
    }
    Ok(())
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
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

    #[test]
    fn query_answers_are_the_sqs_xml() {
        let output = json!({
            "Messages": [{"MessageId": "1", "Body": "<b>&", "Attributes": {"SentTimestamp": "5"},
                          "MessageAttributes": {"c": {"DataType": "String", "StringValue": "r"}}}]
        });
        let Value::Object(output) = output else {
            unreachable!()
        };
        let response = success(Protocol::Query, "ReceiveMessage", output, "rid");
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        let xml = String::from_utf8(body.to_vec()).unwrap();
        let expected = format!(
            "<ReceiveMessageResponse xmlns=\"{XML_NAMESPACE}\"><ReceiveMessageResult><Message>\
             <Attribute><Name>SentTimestamp</Name><Value>5</Value></Attribute>\
             <Body>&lt;b&gt;&amp;</Body>\
             <MessageAttribute><Name>c</Name><Value><DataType>String</DataType>\
             <StringValue>r</StringValue></Value></MessageAttribute>\
             <MessageId>1</MessageId></Message></ReceiveMessageResult>\
             <ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></ReceiveMessageResponse>"
        );
        assert_eq!(xml, expected);
    }
}
