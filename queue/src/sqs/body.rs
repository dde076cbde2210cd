//! A request's body, read only as far as an SQS request can reach: it is
//! read before its signature can be checked, so without a bound anyone who
//! reaches the endpoint could make it hold any amount.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use futures::StreamExt;

use super::error::{SqsError, SqsResult};
use super::settings::MAX_MESSAGE_SIZE;

/// The largest body read: SQS's largest message (or a batch's whole) three
/// times over, as encoding can make it (a percent-encoded form, botocore's
/// `\uXXXX` for non-ASCII JSON), and room for the rest of the request.
pub(super) const MAX_REQUEST_BYTES: usize = 3 * MAX_MESSAGE_SIZE as usize + 64 * 1024;

/// The whole body, refused as soon as it is known to be too large: from its
/// Content-Length before anything is read, or when what arrived passes the
/// bound.
pub(super) async fn read(headers: &HeaderMap, body: Body) -> SqsResult<Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(SqsError::request_too_large(MAX_REQUEST_BYTES));
    }
    let mut chunks = body.into_data_stream();
    let mut out = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk
            .map_err(|e| SqsError::malformed(format!("The request body could not be read: {e}")))?;
        if out.len() + chunk.len() > MAX_REQUEST_BYTES {
            return Err(SqsError::request_too_large(MAX_REQUEST_BYTES));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_without_a_length_is_refused_once_past_the_bound() {
        let chunk = Bytes::from(vec![b' '; 64 * 1024]);
        let chunks = MAX_REQUEST_BYTES / chunk.len() + 2;
        let over =
            futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        let no_length = HeaderMap::new();
        let read = read(&no_length, Body::from_stream(over));
        let refused = futures::executor::block_on(read).err().map(|e| e.code);
        assert_eq!(refused, Some("RequestEntityTooLarge"));
    }
}
