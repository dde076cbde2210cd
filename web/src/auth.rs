//! Job tokens: capabilities handed out at job creation.
//!
//! Only the SHA-256 of a token is stored; comparisons are constant time, and a
//! wrong token looks exactly like a missing job (404). Handlers take a
//! [`JobAccess`], which checks the token of the job their path names (an
//! upload an [`UploadAccess`], which also reads what it needs of the job).

use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use common::recipe::Recipe;

use crate::AppState;
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

/// The bearer token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Proof that a request holds the token of the job its path names (`{id}`).
///
/// The token comes from `Authorization: Bearer <token>`, or, for GET only, a
/// `token` query parameter: plain links (downloads) and `EventSource` cannot
/// set headers, but a request that changes something never needs to put a
/// token where logs and browser histories keep it.
#[derive(Clone, Copy, Debug)]
pub struct JobAccess {
    pub job_id: Uuid,
}

impl FromRequestParts<AppState> for JobAccess {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let (job_id, token) = credentials(parts, state).await?;
        // An expired job is gone, even before the sweeper has deleted it.
        let stored = sqlx::query_scalar!(
            "select token_hash from jobs where id = $1 and expires_at > now()",
            job_id
        )
        .fetch_optional(&state.pool)
        .await?;
        check(stored.as_deref(), token.as_deref())?;
        Ok(JobAccess { job_id })
    }
}

/// A [`JobAccess`] for an upload, with what the upload needs of its job
/// read by the statement that checks the token: an upload request (one
/// file each, as browsers send them) costs Postgres one round trip and one
/// transaction fewer than a check followed by a read.
#[derive(Debug)]
pub struct UploadAccess {
    pub job_id: Uuid,
    pub recipes: Vec<Recipe>,
    /// Images the job holds already.
    pub image_count: u32,
}

impl FromRequestParts<AppState> for UploadAccess {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let (job_id, token) = credentials(parts, state).await?;
        let job = sqlx::query!(
            "select token_hash, recipes, image_count from jobs
             where id = $1 and expires_at > now()",
            job_id
        )
        .fetch_optional(&state.pool)
        .await?;
        check(
            job.as_ref().map(|j| j.token_hash.as_slice()),
            token.as_deref(),
        )?;
        let Some(job) = job else {
            return Err(AppError::NotFound);
        };
        let recipes = serde_json::from_value(job.recipes).map_err(anyhow::Error::from)?;
        Ok(UploadAccess {
            job_id,
            recipes,
            image_count: u32::try_from(job.image_count).unwrap_or(0),
        })
    }
}

/// The job its path names (`{id}`) and the token a request presents for it.
async fn credentials(parts: &mut Parts, state: &AppState) -> AppResult<(Uuid, Option<String>)> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| AppError::NotFound)?;
    let job_id: Uuid = params
        .iter()
        .find(|(name, _)| *name == "id")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or(AppError::NotFound)?;
    let query = Query::<TokenQuery>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.token);
    let token = match (bearer(&parts.headers), query) {
        (Some(token), _) => Some(token.to_owned()),
        (None, Some(token)) if parts.method == Method::GET || parts.method == Method::HEAD => {
            Some(token)
        }
        (None, Some(_)) => {
            return Err(AppError::BadRequest(
                "send the job token in the Authorization header (Bearer); only downloads \
                 and event streams take it in the URL"
                    .into(),
            ));
        }
        (None, None) => None,
    };
    Ok((job_id, token))
}

/// Succeeds when `token` is the one whose hash is `stored`; 404 otherwise,
/// a missing (or expired) job alike.
fn check(stored: Option<&[u8]>, token: Option<&str>) -> AppResult<()> {
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
