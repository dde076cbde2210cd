//! `POST /api/jobs/{id}/recipes`: more recipes run on the originals a job
//! already holds, so nobody uploads a photo twice.
//!
//! The call is idempotent: recipes the job has already (same name, same
//! ops) are not added again, and only the outputs missing are queued. Work
//! is charged to the client's rate image by image, as uploads are; when the
//! rate runs out the call queues what it could pay for and answers 429 with
//! `Retry-After`, and the same call later queues the rest.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::protocol::Request;
use common::recipe::Recipe;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::JobAccess;
use crate::error::{AppError, AppResult, ErrorBody, retry_after_header};
use crate::events::JobEvents;
use crate::http::jobs::{MAX_RECIPES, parse_recipes};
use crate::rate::{Client, Limited};
use crate::requests;
use crate::work::{self, Header, StoredHeader};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_recipes))
}

/// What became of the recipes asked for.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecipesAdded {
    /// All the job's recipes now, the new ones last; images uploaded from
    /// now on get them all.
    recipes: Vec<Recipe>,
    /// Outputs this call queued (an image and a recipe each).
    queued: usize,
    /// Outputs still to queue: the client's work rate ran out (429); send
    /// the same call again after `Retry-After`.
    waiting: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// An image of the job and the asked-for recipes it has no output of.
struct Missing {
    image: Uuid,
    name: String,
    key: String,
    header: Header,
    recipes: Vec<Recipe>,
}

#[utoipa::path(post, path = "/api/jobs/{id}/recipes", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    security(("job_token" = [])),
    request_body(content_type = "application/json",
        description = "`{\"recipes\":[...]}` as at job creation; a recipe the job has already (same name and ops) is not added twice"),
    responses(
        (status = 201, description = "Every asked-for recipe is the job's and has an output on every image", body = RecipesAdded),
        (status = 400, description = "Invalid recipes, a name the job uses for other ops, more than 16 recipes in all, or work no client may ask for in a minute", body = ErrorBody),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
        (status = 429, description = "Over the client's work rate: some outputs queued, the rest wait (Retry-After); send the same call again", body = RecipesAdded),
    )
)]
pub(crate) async fn add_recipes(
    State(state): State<AppState>,
    Client(client): Client,
    access: JobAccess,
    body: Bytes,
) -> AppResult<Response> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let asked = parse_recipes(&body, &state.settings.limits)?;
    let mut tx = state.pool.begin().await?;
    let recipes = merge_locked(&mut tx, access.job_id, &asked).await?;
    let missing = missing_outputs(&mut tx, access.job_id, &asked).await?;
    let (paid, limited) = charge(&state, client, &missing)?;
    let queued = queue(&mut tx, &state, access.job_id, &missing[..paid]).await?;
    tx.commit().await?;
    let waiting = missing[paid..].iter().map(|m| m.recipes.len()).sum();
    Ok(answer(recipes, queued, waiting, limited))
}

/// The job's recipes with those of `asked` it lacks added, under its row's
/// lock (an upload records its image with the recipes it finds there).
async fn merge_locked(
    tx: &mut PgConnection,
    job: Uuid,
    asked: &[Recipe],
) -> AppResult<Vec<Recipe>> {
    let stored = sqlx::query_scalar!("select recipes from jobs where id = $1 for update", job)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut recipes: Vec<Recipe> = serde_json::from_value(stored).map_err(anyhow::Error::from)?;
    for (i, recipe) in asked.iter().enumerate() {
        match recipes.iter().find(|r| r.name == recipe.name) {
            Some(same) if same.ops == recipe.ops => {}
            Some(_) => {
                return Err(AppError::BadRequest(format!(
                    "recipes[{i}].name: this job has a recipe `{}` with other ops; name it \
                     differently",
                    recipe.name
                )));
            }
            None => recipes.push(recipe.clone()),
        }
    }
    if recipes.len() > MAX_RECIPES {
        return Err(AppError::BadRequest(format!(
            "a job holds at most {MAX_RECIPES} recipes; with these it would hold {}",
            recipes.len()
        )));
    }
    sqlx::query!(
        "update jobs set recipes = $2 where id = $1",
        job,
        serde_json::to_value(&recipes).map_err(anyhow::Error::from)?
    )
    .execute(&mut *tx)
    .await?;
    Ok(recipes)
}

/// The job's images, oldest first, with the recipes of `asked` each has no
/// output of; images that have them all are left out.
async fn missing_outputs(
    tx: &mut PgConnection,
    job: Uuid,
    asked: &[Recipe],
) -> AppResult<Vec<Missing>> {
    let names: Vec<&str> = asked.iter().map(|r| r.name.as_str()).collect();
    let rows = sqlx::query_file!("sql/missing_outputs.sql", job, &names as &[&str])
        .fetch_all(&mut *tx)
        .await?;
    let by_name: HashMap<&str, &Recipe> = asked.iter().map(|r| (r.name.as_str(), r)).collect();
    rows.into_iter()
        .map(|row| {
            let header = Header::stored(&StoredHeader {
                content_type: &row.content_type,
                width: row.width,
                height: row.height,
                bytes_per_pixel: row.bytes_per_pixel,
                scalable: row.scalable,
            })?;
            let recipes = row.missing.iter().map(|n| by_name[n.as_str()].clone());
            Ok(Missing {
                image: row.id,
                name: row.name,
                key: row.storage_key,
                header,
                recipes: recipes.collect(),
            })
        })
        .collect()
}

/// Charges the client for the missing outputs image by image, oldest
/// first, while its rate allows; returns how many images were paid for and
/// why the rest were not.
fn charge(
    state: &AppState,
    client: std::net::IpAddr,
    missing: &[Missing],
) -> AppResult<(usize, Option<Limited>)> {
    let limits = &state.settings.limits;
    let works: Vec<u64> = missing
        .iter()
        .map(|m| m.header.work(limits, &m.recipes))
        .collect();
    // Refused before anything is charged: no wait would let it through.
    for (m, &w) in missing.iter().zip(&works) {
        let what = || {
            format!(
                "{} (`{}`) with these recipes",
                m.header.describe(limits),
                m.name
            )
        };
        work::payable(state, w, what).map_err(AppError::BadRequest)?;
    }
    for (paid, &w) in works.iter().enumerate() {
        if let Err(limited) = state.rates.work(client, w) {
            return Ok((paid, Some(limited)));
        }
    }
    Ok((missing.len(), None))
}

/// Inserts the outputs of `missing` and sends their requests, announcing
/// the job to its progress streams; returns how many.
async fn queue(
    tx: &mut PgConnection,
    state: &AppState,
    job: Uuid,
    missing: &[Missing],
) -> anyhow::Result<usize> {
    let (mut images, mut names, mut messages) = (Vec::new(), Vec::new(), Vec::new());
    for m in missing {
        for recipe in &m.recipes {
            images.push(m.image);
            names.push(recipe.name.as_str());
            messages.push(requests::message(&Request {
                job_id: job,
                image_id: m.image,
                image_name: m.name.clone(),
                recipe: recipe.clone(),
                source_key: m.key.clone(),
            })?);
        }
    }
    if messages.is_empty() {
        return Ok(0);
    }
    sqlx::query_file!("sql/insert_outputs.sql", &images, &names as &[&str], job,)
        .execute(&mut *tx)
        .await?;
    state.requests.send_batch_in(tx, &messages).await?;
    JobEvents::announce(&mut *tx, &[job]).await?;
    Ok(messages.len())
}

fn answer(
    recipes: Vec<Recipe>,
    queued: usize,
    waiting: usize,
    limited: Option<Limited>,
) -> Response {
    let Some(limited) = limited.filter(|_| waiting > 0) else {
        let body = RecipesAdded {
            recipes,
            queued,
            waiting,
            error: None,
        };
        return (StatusCode::CREATED, Json(body)).into_response();
    };
    let wait = limited.retry_after;
    let error = format!(
        "too many images to process from your address: {queued} outputs queued, {waiting} wait; \
         send the same call again in {} s",
        wait.as_secs().max(1)
    );
    let body = RecipesAdded {
        recipes,
        queued,
        waiting,
        error: Some(error),
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after_header(wait));
    response
}
