//! Assertions on answers: statuses, bodies, headers.

use serde_json::Value;

/// Asserts the response's status (showing its body if it differs) and
/// returns its JSON body (`null` when it has none).
pub async fn expect_json(res: reqwest::Response, status: u16) -> Value {
    let actual = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(actual, status, "{text}");
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Asserts the response is `status` with a `Retry-After` of whole seconds,
/// at least 1; returns those seconds and the JSON body.
pub async fn expect_retry(res: reqwest::Response, status: u16) -> (u64, Value) {
    let retry_after = res.headers().get("retry-after").cloned();
    let body = expect_json(res, status).await;
    let retry_after = retry_after.unwrap_or_else(|| panic!("no Retry-After: {body}"));
    let wait: u64 = retry_after.to_str().unwrap().parse().unwrap();
    assert!(wait >= 1, "Retry-After: {wait}");
    (wait, body)
}

/// Asserts that `body["error"]` is a message naming every one of `words`.
pub fn assert_error(body: &Value, words: &[&str]) {
    let error = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
    for word in words {
        assert!(error.contains(word), "{word:?} missing from {body}");
    }
}

/// The value of the response's header `name`, which must be there.
pub fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()[name].to_str().unwrap()
}

/// The first output of the first image in a job status.
pub fn first_output(status: &Value) -> &Value {
    &status["images"][0]["outputs"][0]
}

/// The id of the first image of an upload's answer.
pub fn image_id(uploaded: &Value) -> &str {
    uploaded["images"][0]["id"].as_str().unwrap()
}

/// How many entries the array `value` holds.
pub fn count(value: &Value) -> usize {
    value.as_array().unwrap_or_else(|| panic!("{value}")).len()
}
