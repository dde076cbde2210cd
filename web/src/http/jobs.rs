//! `POST /api/jobs`: a job is a set of recipes, judged before it exists.

use std::collections::HashSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::Limits;
use common::recipe::Recipe;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::types::PgInterval;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{JobAccess, new_token};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::rate::Client;
use crate::webhooks;

/// Most recipes in one job.
pub(crate) const MAX_RECIPES: usize = 16;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_job))
        .routes(routes!(delete_job))
}

/// What `POST /api/jobs` takes.
#[derive(Debug, ToSchema)]
pub(crate) struct CreateJob {
    /// 1 to 16 recipes with distinct names.
    recipes: Vec<Recipe>,
    /// An http(s) URL that gets the job's `image.failed` and `job.done`
    /// events (POST, JSON; see the README).
    #[schema(value_type = Option<String>)]
    webhook: Option<String>,
}

impl CreateJob {
    /// Parses `{"recipes":[...]}`, naming the field at fault, and refuses a
    /// recipe that would cost more than `limits` allow on the largest image
    /// they accept.
    pub(crate) fn parse(body: &[u8], limits: &Limits) -> AppResult<Self> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| AppError::BadRequest(format!("body is not valid JSON: {e}")))?;
        let recipes = parse_recipes(&value, limits)?;
        let webhook = match value.get("webhook") {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) => Some(url.clone()),
            Some(_) => {
                return Err(AppError::BadRequest(
                    "`webhook` must be a URL string".into(),
                ));
            }
        };
        Ok(CreateJob { recipes, webhook })
    }
}

/// The `recipes` of a request's body: 1 to [`MAX_RECIPES`] valid recipes
/// with distinct names, each within what `limits` allow on the largest
/// image they accept; an error names the field at fault.
pub(crate) fn parse_recipes(body: &Value, limits: &Limits) -> AppResult<Vec<Recipe>> {
    let recipes = body
        .get("recipes")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            AppError::BadRequest(
                "`recipes` is missing: send {\"recipes\":[{\"name\":..,\"ops\":[..]}]}".into(),
            )
        })?;
    if recipes.is_empty() || recipes.len() > MAX_RECIPES {
        return Err(AppError::BadRequest(format!(
            "`recipes` must hold 1 to {MAX_RECIPES} recipes"
        )));
    }
    let mut names = HashSet::new();
    recipes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let recipe = Recipe::from_json(r, &format!("recipes[{i}]"))
                .map_err(|e| AppError::BadRequest(e.to_string()))?;
            limits.check_recipe(&recipe).map_err(|e| {
                AppError::BadRequest(format!("recipes[{i}] ({}): {e}", recipe.name))
            })?;
            if !names.insert(recipe.name.clone()) {
                return Err(AppError::BadRequest(format!(
                    "recipes[{i}].name: `{}` is used twice",
                    recipe.name
                )));
            }
            Ok(recipe)
        })
        .collect()
}

/// A new job.
#[derive(Serialize, ToSchema)]
pub(crate) struct JobCreated {
    id: Uuid,
    /// The only key to the job: `Authorization: Bearer <token>` (links
    /// for plain URLs come signed from `POST /api/jobs/{id}/links`). Not
    /// stored by the server, so keep it.
    token: String,
    recipes: Vec<Recipe>,
    /// The key of the `x-cmq-signature` header on webhook deliveries
    /// (`sha256=` + hex HMAC-SHA256 of the body); given only here.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<String>,
    /// When the job and its files are deleted: `DARKROOM_EMPTY_JOB_TTL`
    /// after creation until its first upload, which extends it to
    /// `DARKROOM_JOB_TTL` after creation.
    expires_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/api/jobs", tag = "jobs",
    request_body = CreateJob,
    responses(
        (status = 201, description = "Job created; keep the token", body = JobCreated),
        (status = 400, description = "Invalid recipes, naming the op and field, or over the pixel cap or the cost budget", body = ErrorBody),
        (status = 429, description = "Over the client's rate of job creation (Retry-After)", body = ErrorBody),
    )
)]
pub(crate) async fn create_job(
    State(state): State<AppState>,
    Client(client): Client,
    body: Bytes,
) -> AppResult<(StatusCode, Json<JobCreated>)> {
    state.rates.job(client)?;
    let CreateJob { recipes, webhook } = CreateJob::parse(&body, &state.settings.limits)?;
    let webhook = webhook
        .map(|url| webhooks::check_url(&url, state.settings.allow_private_webhooks))
        .transpose()?;
    let id = Uuid::new_v4();
    let (token, token_hash) = new_token();
    // Kept briefly until its first upload (see `uploads`), so that jobs
    // nobody uploads to do not pile up, each holding its progress streams.
    let settings = &state.settings;
    let ttl = settings.job_ttl.min(settings.empty_job_ttl);
    let ttl = PgInterval::try_from(ttl).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The job and its webhook's subscription commit together.
    let mut tx = state.pool.begin().await?;
    let expires_at = sqlx::query_file_scalar!(
        "sql/insert_job.sql",
        id,
        token_hash,
        serde_json::to_value(&recipes).map_err(anyhow::Error::from)?,
        ttl,
    )
    .fetch_one(&mut *tx)
    .await?;
    let webhook_secret = match webhook {
        Some(spec) => Some(webhooks::subscribe(&mut tx, &state.topics, id, spec).await?),
        None => None,
    };
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(JobCreated {
            id,
            token,
            recipes,
            webhook_secret,
            expires_at,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    security(("job_token" = [])),
    responses(
        (status = 204, description = "The job, its originals and its results are deleted now, before they expire"),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
    )
)]
pub(crate) async fn delete_job(
    State(state): State<AppState>,
    access: JobAccess,
) -> AppResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    // Locked, so that the expiry sweeper (which skips locked jobs) and a
    // second delete wait for this one rather than delete beside it.
    let job = sqlx::query_scalar!(
        "select id from jobs where id = $1 for update",
        access.job_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AppError::NotFound)?;
    crate::expiry::delete_jobs(&mut tx, &state.storage, &state.topics, &[job]).await?;
    tx.commit().await?;
    tracing::info!(job = %job, "job deleted by its owner");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_recipe_names_are_rejected() {
        let body = br#"{"recipes":[{"name":"a","ops":[{"op":"flip","axis":"vertical"}]},{"name":"a","ops":[{"op":"flip","axis":"vertical"}]}]}"#;
        assert!(
            matches!(CreateJob::parse(body, &Limits::default()), Err(AppError::BadRequest(m)) if m.contains("twice"))
        );
    }
}
