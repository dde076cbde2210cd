//! Answers in the request's protocol: JSON objects, or the query
//! protocol's XML (`<ActionResponse><ActionResult>`, lists flattened into
//! repeated elements), and errors as each protocol reports them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::Writer;
use quick_xml::events::BytesText;
use serde_json::{Map, Value};

use super::error::SqsError;
use super::protocol::{JSON_CONTENT_TYPE, Protocol, XML_NAMESPACE};

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
            // Into bytes: `Value`'s `Display` writes through `fmt::Write`
            // piece by piece, which showed in profiles of receives.
            serde_json::to_vec(&output).expect("a JSON map always serializes"),
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
                serde_json::to_vec(&body).expect("a JSON value always serializes"),
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
    // XML parsers read a bare `\r` (and `\r\n`) as `\n`; written as a
    // character reference it survives, so a body reads back as sent and its
    // MD5 still matches.
    let escaped = quick_xml::escape::escape(value);
    let escaped = if escaped.contains('\r') {
        escaped.replace('\r', "&#xD;").into()
    } else {
        escaped
    };
    w.create_element(name)
        .write_text_content(BytesText::from_escaped(escaped))?;
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
    fn query_answers_are_the_sqs_xml() {
        let output = json!({
            "Messages": [{"MessageId": "1", "Body": "<b>&\r", "Attributes": {"SentTimestamp": "5"},
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
             <Body>&lt;b&gt;&amp;&#xD;</Body>\
             <MessageAttribute><Name>c</Name><Value><DataType>String</DataType>\
             <StringValue>r</StringValue></Value></MessageAttribute>\
             <MessageId>1</MessageId></Message></ReceiveMessageResult>\
             <ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></ReceiveMessageResponse>"
        );
        assert_eq!(xml, expected);
    }
}
