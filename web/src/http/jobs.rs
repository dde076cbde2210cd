//! Jobs: create and status.

use std::collections::{BTreeMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use common::Limits;
use common::cost::{self, Source};
use common::limits::LimitError;
use common::recipe::{OutputFormat, Recipe};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::postgres::types::PgInterval;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{JobAccess, new_token};
use crate::http::error::{AppError, AppResult, ErrorBody};
use crate::http::openapi::{CreateJob, JobCreated};
use crate::rate::Client;

/// Most recipes in one job.
const MAX_RECIPES: usize = 16;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/jobs", post(create_job))
        .route("/api/jobs/{id}", get(get_job))
}

/// Parses `{"recipes":[...]}`, naming the field at fault, and refuses a
/// recipe that would cost more than `limits` allow on the largest image they
/// accept.
pub fn parse_recipes(body: &[u8], limits: &Limits) -> AppResult<Vec<Recipe>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let recipes = value
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
            check_cost(&recipe, limits).map_err(|e| {
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

/// A recipe is judged on the worst image the limits let through: the most
/// pixels, no shrink on load, encoded as PNG unless it names a format.
fn check_cost(recipe: &Recipe, limits: &Limits) -> Result<(), LimitError> {
    let format = recipe.format().map_or(OutputFormat::Png, |(f, _)| f);
    let worst = Source::worst(limits.max_pixels, limits.max_bytes);
    limits.check(&cost::estimate(&worst, &recipe.ops, format))
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
) -> AppResult<(StatusCode, Json<Value>)> {
    state.rates.job(client)?;
    let recipes = parse_recipes(&body, &state.settings.limits)?;
    let id = Uuid::new_v4();
    let (token, token_hash) = new_token();
    let ttl = PgInterval::try_from(state.settings.job_ttl).map_err(|e| anyhow::anyhow!("{e}"))?;
    let expires_at = sqlx::query_scalar!(
        r#"
        insert into jobs (id, token_hash, recipes, expires_at)
        values ($1, $2, $3, now() + $4)
        returning expires_at
        "#,
        id,
        token_hash,
        serde_json::to_value(&recipes).map_err(anyhow::Error::from)?,
        ttl,
    )
    .fetch_one(&state.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "token": token, "recipes": recipes, "expires_at": expires_at })),
    ))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct JobView {
    id: Uuid,
    state: &'static str,
    /// Of the whole job, whichever page this is.
    counts: Counts,
    /// When the job and its files are deleted.
    expires_at: DateTime<Utc>,
    /// A page of the job's images, oldest first.
    images: Vec<ImageView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Uuid>,
}

/// Images per page of a job's status, by default and at most.
const PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// A page of a job's images: `limit` of them after image `after`.
#[derive(Deserialize, IntoParams)]
pub(crate) struct PageQuery {
    /// Images per page (default 100, at most 1000).
    limit: Option<u32>,
    /// The `next` of the previous page.
    after: Option<Uuid>,
}

/// How far a job's outputs are.
#[derive(Serialize, Default, ToSchema)]
pub(crate) struct Counts {
    total: usize,
    done: usize,
    failed: usize,
    #[serde(skip)]
    started: usize,
}

impl Counts {
    pub(crate) fn add(&mut self, output_state: &str) {
        self.total += 1;
        match output_state {
            "done" => self.done += 1,
            "failed" => self.failed += 1,
            "queued" => return,
            _ => {}
        }
        self.started += 1;
    }

    /// `done` once every output is done or failed.
    pub(crate) fn job_state(&self) -> &'static str {
        if self.total > 0 && self.done + self.failed == self.total {
            "done"
        } else if self.started > 0 {
            "running"
        } else {
            "pending"
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ImageView {
    id: Uuid,
    name: String,
    outputs: Vec<OutputView>,
}

/// One output as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct OutputView {
    pub recipe: String,
    pub state: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub bytes: Option<i64>,
    pub format: Option<String>,
    /// Where to download it, once done.
    pub url: Option<String>,
    pub error: Option<String>,
}

impl OutputView {
    /// Fills in `url` for a done output.
    pub(crate) fn with_url(mut self, job: Uuid, image: Uuid) -> Self {
        if self.state == "done" {
            self.url = Some(format!("/api/jobs/{job}/images/{image}/{}", self.recipe));
        }
        self
    }
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"), PageQuery),
    security(("job_token" = []), ("job_token_query" = [])),
    responses(
        (status = 200, description = "The job, its counts and a page of its images with their outputs", body = JobView),
        (status = 400, description = "A bad `limit` or `after`", body = ErrorBody),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
    )
)]
pub(crate) async fn get_job(
    State(state): State<AppState>,
    access: JobAccess,
    Query(page): Query<PageQuery>,
) -> AppResult<Json<JobView>> {
    let id = access.job_id;
    let limit = page.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "`limit` must be 1 to {MAX_PAGE} images"
        )));
    }
    let job = sqlx::query!(
        r#"
        select expires_at,
               (select array_agg(state) from outputs where job_id = $1) as "states?"
        from jobs where id = $1
        "#,
        id
    )
    .fetch_one(&state.pool)
    .await?;
    let mut counts = Counts::default();
    for s in job.states.unwrap_or_default() {
        counts.add(&s);
    }
    // One more image than the page holds says whether another page follows.
    let rows = sqlx::query!(
        r#"
        with page as (
            select i.id, i.name, i.created_at from images i
            where i.job_id = $1
              and ($2::uuid is null
                   or (i.created_at, i.id) > (select created_at, id from images
                                              where id = $2 and job_id = $1))
            order by i.created_at, i.id
            limit $3
        )
        select p.id as image_id, p.name, o.recipe as "recipe?", o.state as "state?",
               o.width, o.height, o.bytes, o.format, o.error
        from page p
        left join outputs o on o.image_id = p.id
        order by p.created_at, p.id, o.recipe
        "#,
        id,
        page.after,
        i64::from(limit) + 1,
    )
    .fetch_all(&state.pool)
    .await?;
    let mut images: Vec<ImageView> = Vec::new();
    let mut index = BTreeMap::new();
    for r in rows {
        let slot = *index.entry(r.image_id).or_insert_with(|| {
            images.push(ImageView {
                id: r.image_id,
                name: r.name.clone(),
                outputs: Vec::new(),
            });
            images.len() - 1
        });
        let (Some(recipe), Some(output_state)) = (r.recipe, r.state) else {
            continue;
        };
        let output = OutputView {
            recipe,
            state: output_state,
            width: r.width,
            height: r.height,
            bytes: r.bytes,
            format: r.format,
            url: None,
            error: r.error,
        };
        images[slot].outputs.push(output.with_url(id, r.image_id));
    }
    let next = if images.len() > limit as usize {
        images.truncate(limit as usize);
        images.last().map(|i| i.id)
    } else {
        None
    };
    Ok(Json(JobView {
        id,
        state: counts.job_state(),
        counts,
        expires_at: job.expires_at,
        images,
        next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_recipe_names_are_rejected() {
        let body = br#"{"recipes":[{"name":"a","ops":[{"op":"flip","axis":"vertical"}]},{"name":"a","ops":[{"op":"flip","axis":"vertical"}]}]}"#;
        assert!(
            matches!(parse_recipes(body, &Limits::default()), Err(AppError::BadRequest(m)) if m.contains("twice"))
        );
    }
}
