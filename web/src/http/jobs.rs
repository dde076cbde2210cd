//! Jobs: create and status.

use std::collections::{BTreeMap, HashSet};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;
use worker::cost::{self, Source};
use worker::engine::Limits;
use worker::recipe::{OutputFormat, Recipe};

use crate::AppState;
use crate::auth::{JobAccess, new_token};
use crate::http::error::{AppError, AppResult, ErrorBody};
use crate::http::openapi::{CreateJob, JobCreated};

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
fn check_cost(recipe: &Recipe, limits: &Limits) -> Result<(), worker::engine::EngineError> {
    let format = recipe.format().map_or(OutputFormat::Png, |(f, _)| f);
    let worst = Source::worst(limits.max_pixels, limits.max_bytes);
    limits.check(&cost::estimate(&worst, &recipe.ops, format))
}

#[utoipa::path(post, path = "/api/jobs", tag = "jobs",
    request_body = CreateJob,
    responses(
        (status = 201, description = "Job created; keep the token", body = JobCreated),
        (status = 400, description = "Invalid recipes, naming the op and field", body = ErrorBody),
    )
)]
pub(crate) async fn create_job(
    State(state): State<AppState>,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    let recipes = parse_recipes(&body, &state.settings.limits)?;
    let id = Uuid::new_v4();
    let (token, token_hash) = new_token();
    sqlx::query!(
        "insert into jobs (id, token_hash, recipes) values ($1, $2, $3)",
        id,
        token_hash,
        serde_json::to_value(&recipes).map_err(anyhow::Error::from)?,
    )
    .execute(&state.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "token": token, "recipes": recipes })),
    ))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct JobView {
    id: Uuid,
    state: &'static str,
    counts: Counts,
    images: Vec<ImageView>,
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
    params(("id" = Uuid, Path, description = "Job id")),
    security(("job_token" = []), ("job_token_query" = [])),
    responses(
        (status = 200, description = "The job and every output", body = JobView),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
    )
)]
pub(crate) async fn get_job(
    State(state): State<AppState>,
    access: JobAccess,
) -> AppResult<Json<JobView>> {
    let id = access.job_id;
    let rows = sqlx::query!(
        r#"
        select i.id as image_id, i.name, o.recipe as "recipe?", o.state as "state?",
               o.width, o.height, o.bytes, o.format, o.error
        from images i
        left join outputs o on o.image_id = i.id
        where i.job_id = $1
        order by i.created_at, i.id, o.recipe
        "#,
        id
    )
    .fetch_all(&state.pool)
    .await?;
    let mut counts = Counts::default();
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
        counts.add(&output_state);
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
    Ok(Json(JobView {
        id,
        state: counts.job_state(),
        counts,
        images,
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
