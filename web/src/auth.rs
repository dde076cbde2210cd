//! Job tokens: capabilities handed out at job creation.
//!
//! Only the SHA-256 of a token is stored; comparisons are constant time, and a
//! wrong token looks exactly like a missing job (404).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::http::error::{AppError, AppResult};

/// A fresh token (256 random bits) and the hash to store.
pub fn new_token() -> (String, Vec<u8>) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = hash(&token);
    (token, hash)
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The token of a request: `Authorization: Bearer <token>`, or a `token`
/// query parameter for plain links (downloads) that cannot set headers.
pub fn presented_token<'a>(
    headers: &'a HeaderMap,
    query_token: Option<&'a str>,
) -> Option<&'a str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or(query_token)
}

/// Succeeds when `token` opens job `job_id`; 404 otherwise.
pub async fn authorize(pool: &PgPool, job_id: Uuid, token: Option<&str>) -> AppResult<()> {
    let stored = sqlx::query_scalar!("select token_hash from jobs where id = $1", job_id)
        .fetch_optional(pool)
        .await?;
    let presented = hash(token.unwrap_or(""));
    // Hash even when the job is missing, so timing does not tell the two apart.
    let ok = match stored {
        Some(stored) => bool::from(stored.ct_eq(&presented)) && token.is_some(),
        None => false,
    };
    if ok { Ok(()) } else { Err(AppError::NotFound) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(ha, hash(&a));
    }
}
