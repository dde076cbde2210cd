//! Access keys and AWS Signature Version 4, checked on every request.
//!
//! SDKs sign requests; `aws-sigv4` makes such signatures but has no way to
//! check one against the headers a client chose to sign, so the check is
//! here: the canonical request is rebuilt from what arrived and signed with
//! the key's secret (<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>).

use std::collections::HashMap;

use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{SqsError, SqsResult};
use super::keys::AccessKeys;

/// How far a request's `X-Amz-Date` may be from our clock, as SQS allows.
const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);

/// Everything after `/` and before `?` that SigV4 leaves unescaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Who signed a request, and for which region.
#[derive(Debug, PartialEq)]
pub(crate) struct Signer {
    pub(crate) key_id: String,
    pub(crate) region: String,
}

/// Checks the request's SigV4 signature, in its `Authorization` header or
/// in its query (a presigned URL); returns who signed it.
pub(crate) fn verify(
    keys: &AccessKeys,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> SqsResult<Signer> {
    let signed = match headers.get("authorization") {
        Some(v) => Signed::from_headers(v.to_str().unwrap_or_default(), headers)?,
        None => Signed::from_query(uri.query())?,
    };
    let auth = &signed.auth;
    let secret = keys
        .secret(&auth.key_id)
        .ok_or_else(SqsError::unknown_key)?;
    let amz_date = signed.amz_date.as_str();
    let signed_at = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| SqsError::incomplete_signature("X-Amz-Date is not YYYYMMDD'T'HHMMSS'Z'."))?
        .and_utc();
    let late = match signed.expires {
        Some(expires) => now - signed_at > expires,
        None => now - signed_at > MAX_SKEW,
    };
    if late || signed_at - now > MAX_SKEW {
        return Err(SqsError::request_expired());
    }
    if !amz_date.starts_with(&auth.date) {
        return Err(SqsError::incomplete_signature(
            "The credential's date is not the date of X-Amz-Date.",
        ));
    }
    check_signed_headers(&auth.signed_headers, headers)?;
    let canonical = canonical_request(method, uri, headers, &auth.signed_headers, body)?;
    let expected = signature(secret, auth, amz_date, &canonical);
    if expected.as_bytes().ct_eq(auth.signature.as_bytes()).into() {
        Ok(Signer {
            key_id: signed.auth.key_id,
            region: signed.auth.region,
        })
    } else {
        Err(SqsError::signature_mismatch())
    }
}

/// A request's signature and what it was made at, wherever it was sent.
struct Signed {
    auth: Authorization,
    amz_date: String,
    /// How long past `amz_date` a presigned URL may be used; a signed
    /// request may be as late as the clock skew SQS allows.
    expires: Option<TimeDelta>,
}

impl Signed {
    fn from_headers(authorization: &str, headers: &HeaderMap) -> SqsResult<Self> {
        let auth = Authorization::parse(authorization)?;
        let amz_date = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| SqsError::incomplete_signature("X-Amz-Date header is missing."))?;
        Ok(Self {
            auth,
            amz_date: amz_date.to_owned(),
            expires: None,
        })
    }

    /// A presigned URL's `X-Amz-*` parameters.
    fn from_query(query: Option<&str>) -> SqsResult<Self> {
        let params: HashMap<String, String> =
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let param = |name: &str| params.get(name).map(String::as_str);
        let Some(signature) = param("X-Amz-Signature") else {
            return Err(SqsError::missing_authentication());
        };
        if param("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") {
            return Err(SqsError::incomplete_signature(
                "Only AWS4-HMAC-SHA256 signatures are accepted.",
            ));
        }
        let (Some(credential), Some(signed_headers), Some(amz_date)) = (
            param("X-Amz-Credential"),
            param("X-Amz-SignedHeaders"),
            param("X-Amz-Date"),
        ) else {
            return Err(SqsError::incomplete_signature(
                "A presigned URL needs X-Amz-Credential, X-Amz-SignedHeaders and X-Amz-Date.",
            ));
        };
        let expires = match param("X-Amz-Expires").map(str::parse::<i64>) {
            None => MAX_SKEW.num_seconds(),
            Some(Ok(secs)) if (0..=7 * 24 * 3600).contains(&secs) => secs,
            Some(_) => {
                return Err(SqsError::incomplete_signature(
                    "X-Amz-Expires must be 0 to 604800 seconds.",
                ));
            }
        };
        Ok(Self {
            auth: Authorization::from_parts(credential, signed_headers, signature)?,
            amz_date: amz_date.to_owned(),
            expires: Some(TimeDelta::seconds(expires)),
        })
    }
}

/// Headers whose values decide what a request does must be signed: left
/// unsigned, whoever relays a signed request could change them.
fn check_signed_headers(signed: &SignedHeaders, headers: &HeaderMap) -> SqsResult<()> {
    if !signed.contains("host") {
        return Err(SqsError::incomplete_signature(
            "The Host header must be signed.",
        ));
    }
    // X-Amz-Target names the action (a SendMessage's body read as a
    // PurgeQueue), Content-Type how the body is read.
    for name in ["x-amz-target", "content-type"] {
        if headers.contains_key(name) && !signed.contains(name) {
            return Err(SqsError::incomplete_signature(format!(
                "The {name} header must be signed when it is sent."
            )));
        }
    }
    Ok(())
}

/// The signature `secret` makes of `canonical`, in hex.
fn signature(secret: &str, auth: &Authorization, amz_date: &str, canonical: &str) -> String {
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [&auth.region, &auth.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, PartialEq)]
struct Authorization {
    key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: SignedHeaders,
    signature: String,
}

/// `SignedHeaders`, lower-cased: header names joined by `;`, as the
/// canonical request lists them.
#[derive(Debug, PartialEq)]
struct SignedHeaders(String);

impl SignedHeaders {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.0.split(';')
    }

    fn contains(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }
}

impl Authorization {
    fn parse(header: &str) -> SqsResult<Self> {
        let rest = header.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
            SqsError::incomplete_signature("Only AWS4-HMAC-SHA256 signatures are accepted.")
        })?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for field in rest.split(',').map(str::trim) {
            match field.split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let incomplete = || {
            SqsError::incomplete_signature(
                "Authorization needs Credential, SignedHeaders and Signature.",
            )
        };
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            return Err(incomplete());
        };
        Self::from_parts(credential, signed_headers, signature)
    }

    fn from_parts(credential: &str, signed_headers: &str, signature: &str) -> SqsResult<Self> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [key_id, date, region, service, "aws4_request"] = parts[..] else {
            return Err(SqsError::incomplete_signature(
                "Credential must be KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request.",
            ));
        };
        Ok(Self {
            key_id: key_id.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers: SignedHeaders(signed_headers.to_ascii_lowercase()),
            signature: signature.to_ascii_lowercase(),
        })
    }
}

fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &SignedHeaders,
    body: &[u8],
) -> SqsResult<String> {
    let mut out = String::with_capacity(512);
    out.push_str(method.as_str());
    out.push('\n');
    // Services other than S3 encode each segment of the (already encoded)
    // path once more.
    let path = uri.path();
    if path.is_empty() || path == "/" {
        out.push('/');
    } else {
        let segments: Vec<String> = path
            .split('/')
            .map(|s| utf8_percent_encode(s, UNRESERVED).to_string())
            .collect();
        out.push_str(&segments.join("/"));
    }
    out.push('\n');
    let mut query: Vec<(String, String)> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("X-Amz-Signature="))
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (reencode(k), reencode(v))
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.push_str(&query.join("&"));
    out.push('\n');
    for name in signed_headers.names() {
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            return Err(SqsError::incomplete_signature(format!(
                "Signed header {name} is not in the request."
            )));
        }
        out.push_str(name);
        out.push(':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_trimmed(&mut out, &String::from_utf8_lossy(value.as_bytes()));
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.0);
    out.push('\n');
    out.push_str(&hex::encode(Sha256::digest(body)));
    Ok(out)
}

/// A header value as SigV4 signs it: trimmed, inner runs of spaces one.
fn push_trimmed(out: &mut String, value: &str) {
    for (i, word) in value.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

fn reencode(s: &str) -> String {
    let decoded = percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned();
    utf8_percent_encode(&decoded, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example request of AWS's SigV4 test suite (`get-vanilla`), with
    /// the signature AWS publishes for it.
    #[test]
    fn verifies_aws_published_example() {
        let keys: AccessKeys = "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                .parse()
                .unwrap(),
        );
        let uri: Uri = "/".parse().unwrap();
        let now = "2015-08-30T12:40:00Z".parse().unwrap();
        let signer = verify(&keys, &Method::GET, &uri, &headers, b"", now).unwrap();
        assert_eq!(signer.key_id, "AKIDEXAMPLE");
        assert_eq!(signer.region, "us-east-1");

        let err = verify(&keys, &Method::POST, &uri, &headers, b"", now).unwrap_err();
        assert_eq!(err.code, "SignatureDoesNotMatch");
        let late = "2015-08-30T13:00:00Z".parse().unwrap();
        let err = verify(&keys, &Method::GET, &uri, &headers, b"", late).unwrap_err();
        assert_eq!(err.code, "RequestExpired");
        let other: AccessKeys = "OTHER:wJalrXUtnFEMI".parse().unwrap();
        let err = verify(&other, &Method::GET, &uri, &headers, b"", now).unwrap_err();
        assert_eq!(err.code, "InvalidClientTokenId");
    }
}
