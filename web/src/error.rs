//! The one error type of every handler and extractor: the HTTP routes, and
//! the extractors and checks they use (`auth`, `rate`, `webhooks`) all
//! answer with it, so it sits below them all.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A handler error: 4xx carry an actionable message; 5xx are logged in full
/// and answered with a generic message.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Also used for a wrong or missing job token, so as not to reveal that a
    /// job exists.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request is fine but the resource is not ready for it.
    #[error("{0}")]
    Conflict(String),
    /// Over a rate or a cap; come back after `retry_after`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<queue::Error> for AppError {
    fn from(e: queue::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<common::storage::StorageError> for AppError {
    fn from(e: common::storage::StorageError) -> Self {
        AppError::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = match &self {
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                "internal error; see the server log".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (self.status(), Json(ErrorBody { error: message })).into_response();
        if let AppError::TooManyRequests { retry_after, .. } = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                retry_after_header(*retry_after),
            );
        }
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub fn retry_after_header(after: std::time::Duration) -> axum::http::HeaderValue {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    axum::http::HeaderValue::from(secs.max(1))
}

/// How every error is answered.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}
