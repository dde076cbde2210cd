//! Job tokens: capabilities handed out at job creation.
//!
//! Only the SHA-256 of a token is stored; comparisons are constant time, and a
//! wrong token, or a bad or expired signed link, looks exactly like a missing
//! job (404). Handlers take a
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
use crate::error::{AppError, AppResult};
use crate::links::LinkKey;

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

/// Credentials a URL may carry: a signed link's, or a job token, which is
/// never taken from a URL but named in the refusal of a request that
/// changes something.
#[derive(Default, Deserialize)]
struct UrlCredentials {
    token: Option<String>,
    expires: Option<u64>,
    sig: Option<String>,
}

/// What a request presents for the job its path names.
enum Presented {
    Token(String),
    /// A signed link to this very path, unexpired (see [`crate::links`]).
    SignedLink,
    Nothing,
}

/// Proof that a request holds the token of the job its path names (`{id}`).
///
/// The token comes from `Authorization: Bearer <token>` only: URLs are kept
/// by logs and browser histories. A GET may instead be a signed link to its
/// path (downloads and `EventSource` cannot set headers); a request that
/// changes something never takes credentials from its URL.
#[derive(Clone, Copy, Debug)]
pub struct JobAccess {
    pub job_id: Uuid,
}

impl FromRequestParts<AppState> for JobAccess {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let (job_id, presented) = credentials(parts, state).await?;
        // An expired job is gone, even before the sweeper has deleted it.
        let stored = sqlx::query_scalar!(
            "select token_hash from jobs where id = $1 and expires_at > now()",
            job_id
        )
        .fetch_optional(&state.pool)
        .await?;
        check(stored.as_deref(), &presented)?;
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
        let (job_id, presented) = credentials(parts, state).await?;
        let job = sqlx::query!(
            "select token_hash, recipes, image_count from jobs where id = $1 and expires_at > now()",
            job_id
        )
        .fetch_optional(&state.pool)
        .await?;
        check(job.as_ref().map(|j| j.token_hash.as_slice()), &presented)?;
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

/// The job its path names (`{id}`) and what a request presents for it.
async fn credentials(parts: &mut Parts, state: &AppState) -> AppResult<(Uuid, Presented)> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| AppError::NotFound)?;
    let job_id: Uuid = params
        .iter()
        .find(|(name, _)| *name == "id")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or(AppError::NotFound)?;
    Ok((job_id, presented(parts, &state.settings.link_key)?))
}

fn presented(parts: &Parts, key: &LinkKey) -> AppResult<Presented> {
    if let Some(token) = bearer(&parts.headers) {
        return Ok(Presented::Token(token.to_owned()));
    }
    let url = Query::<UrlCredentials>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let reads = parts.method == Method::GET || parts.method == Method::HEAD;
    if !reads && (url.token.is_some() || url.sig.is_some()) {
        return Err(AppError::BadRequest(
            "send the job token in the Authorization header (Bearer); only downloads \
             and event streams take a signed link in the URL"
                .into(),
        ));
    }
    Ok(match (reads, url.expires, url.sig) {
        (true, Some(expires), Some(sig)) if key.opens(parts.uri.path(), expires, &sig) => {
            Presented::SignedLink
        }
        _ => Presented::Nothing,
    })
}

/// Succeeds when `presented` opens the job whose token hash is `stored`;
/// 404 otherwise, a missing (or expired) job alike.
fn check(stored: Option<&[u8]>, presented: &Presented) -> AppResult<()> {
    let ok = match presented {
        Presented::Token(token) => token_matches(stored, Some(token)),
        Presented::SignedLink => stored.is_some(),
        Presented::Nothing => token_matches(stored, None),
    };
    if ok { Ok(()) } else { Err(AppError::NotFound) }
}

fn token_matches(stored: Option<&[u8]>, token: Option<&str>) -> bool {
    let presented = hash(token.unwrap_or(""));
    // Hash even when the job is missing, so timing does not tell the two apart.
    match stored {
        Some(stored) => bool::from(stored.ct_eq(&presented)) && token.is_some(),
        None => false,
    }
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
