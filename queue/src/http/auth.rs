//! The admin token: refused at start-up when it is weak, compared by digest,
//! checked on every call, and described in the OpenAPI document.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{Api, ApiError, ErrorBody};

/// Shortest admin token accepted.
pub const MIN_TOKEN_CHARS: usize = 24;

/// Values that appear in examples, compose files and tutorials; a token an
/// attacker can guess from the documentation is no token.
const WELL_KNOWN: &[&str] = &[
    "admin",
    "changeme",
    "change-me",
    "change_me",
    "darkroom",
    "dev-admin-token",
    "letmein",
    "password",
    "secret",
    "test",
    "test-admin-token",
    "token",
    "replace-with-a-long-random-token",
];

/// A bearer token for the queue API (and the SQS endpoint), kept only as
/// its SHA-256 digest.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

/// Why a configured token is refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "DARKROOM_ADMIN_TOKEN is {0}; use at least {MIN_TOKEN_CHARS} random characters, \
     e.g. the output of `openssl rand -hex 32`"
)]
pub struct WeakToken(&'static str);

impl AdminToken {
    /// Accepts `token` unless it is short, well known or repetitive.
    pub fn new(token: &str) -> Result<Self, WeakToken> {
        let lower = token.trim().to_ascii_lowercase();
        if WELL_KNOWN.contains(&lower.as_str()) {
            return Err(WeakToken("a well-known value"));
        }
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(WeakToken("too short"));
        }
        let mut distinct: Vec<char> = token.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 8 {
            return Err(WeakToken("too repetitive"));
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `presented` is this token. Digests have one length whatever
    /// was presented, so the comparison's time says nothing about it.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(&self.0))
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Lets a call through when it presents the admin token.
pub(super) async fn authenticate(State(api): State<Api>, request: Request, next: Next) -> Response {
    let Some(expected) = &api.admin_token else {
        return ApiError::Disabled(ErrorBody {
            error: "the queue API is disabled: set DARKROOM_ADMIN_TOKEN to enable it".into(),
        })
        .into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if expected.matches(presented) {
        next.run(request).await
    } else {
        ApiError::Unauthorized(ErrorBody {
            error: "missing or wrong bearer token (Authorization: Bearer <DARKROOM_ADMIN_TOKEN>)"
                .into(),
        })
        .into_response()
    }
}

/// The `admin_token` security scheme of the OpenAPI description.
pub(super) struct Scheme;

impl Modify for Scheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "admin_token",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("DARKROOM_ADMIN_TOKEN"))
                        .build(),
                ),
            );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_tokens_are_refused() {
        for weak in [
            "change-me",
            "CHANGEME",
            "short-token",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(AdminToken::new(weak).is_err(), "{weak}");
        }
    }

    #[test]
    fn strong_token_matches_itself_only() {
        let token = AdminToken::new("9f2c4e1a7b3d8e6f0a5c2b9d4e7f1a3c").unwrap();
        assert!(token.matches("9f2c4e1a7b3d8e6f0a5c2b9d4e7f1a3c"));
        assert!(!token.matches("9f2c4e1a7b3d8e6f0a5c2b9d4e7f1a3"));
        assert!(!token.matches(""));
    }
}
