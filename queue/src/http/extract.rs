//! Extractors shared by the handlers: the queue named in the path, opened,
//! and a JSON body.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::{Api, bad_request};
use crate::Routed;

/// The queue `{name}` in the path, opened through the API's router; a
/// missing queue is the API's 404 before the body is even parsed.
pub(super) struct OpenQueue(pub Routed);

impl FromRequestParts<Api> for OpenQueue {
    // A malformed path keeps axum's own answer, as `Path` gave before.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Response> {
        let Path(name) = Path::<String>::from_request_parts(parts, api)
            .await
            .map_err(IntoResponse::into_response)?;
        match api.router.open(&name).await {
            Ok(queue) => Ok(OpenQueue(queue)),
            Err(e) => Err(super::ApiError::from(e).into_response()),
        }
    }
}

/// A JSON body. Unlike axum's `Json`, an empty body counts as `{}` (calls
/// with nothing to say may send none, and no content type is required),
/// and a bad one is a 400 naming what is wrong, not a 422.
pub(super) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    // Reading the body fails as `Bytes` does (its size limit's 413).
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &body
        };
        match serde_json::from_slice(body) {
            Ok(value) => Ok(JsonBody(value)),
            Err(e) => Err(bad_request(format!("invalid JSON body: {e}")).into_response()),
        }
    }
}
