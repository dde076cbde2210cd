//! `POST /api/jobs/{id}/images/{image_id}/{recipe}/retry`: a failed output
//! queued again, charged to the client's work rate as its upload was.
//!
//! Idempotent: an output already queued or being made stays as it is (no
//! second request, no second charge), so a double click or a resent call
//! costs nothing.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use common::OutputState;
use common::protocol::Request;
use common::recipe::Recipe;
use sqlx::PgConnection;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::JobAccess;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::events::JobEvents;
use crate::http::status::OutputView;
use crate::rate::Client;
use crate::requests;
use crate::work::{self, Header, Refused, StoredHeader};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(retry_output))
}

/// The output to retry, as its row and its image's say.
struct Failed {
    state: OutputState,
    name: String,
    key: String,
    header: Header,
    recipes: serde_json::Value,
}

#[utoipa::path(post, path = "/api/jobs/{id}/images/{image_id}/{recipe}/retry", tag = "jobs",
    params(
        ("id" = Uuid, Path, description = "Job id"),
        ("image_id" = Uuid, Path, description = "Image id"),
        ("recipe" = String, Path, description = "Recipe name"),
    ),
    security(("job_token" = [])),
    responses(
        (status = 202, description = "The output is queued (again, if it had failed; as it was, if it was queued or being made)", body = OutputView),
        (status = 400, description = "Work no client may ask for in a minute", body = ErrorBody),
        (status = 404, description = "No such job, image or output, or a wrong or missing token", body = ErrorBody),
        (status = 409, description = "The output is done: nothing to retry", body = ErrorBody),
        (status = 429, description = "Over the client's work rate (Retry-After)", body = ErrorBody),
    )
)]
pub(crate) async fn retry_output(
    State(state): State<AppState>,
    Client(client): Client,
    access: JobAccess,
    Path((_, image, recipe)): Path<(Uuid, Uuid, String)>,
) -> AppResult<(StatusCode, Json<OutputView>)> {
    let job = access.job_id;
    let mut tx = state.pool.begin().await?;
    let failed = lock_output(&mut tx, job, image, &recipe).await?;
    let queued = |state| OutputView::of_state(recipe.clone(), state);
    match failed.state {
        OutputState::Done => {
            return Err(AppError::Conflict(format!(
                "`{recipe}` of this image is done: nothing to retry"
            )));
        }
        OutputState::Queued | OutputState::Processing => {
            return Ok((StatusCode::ACCEPTED, Json(queued(failed.state))));
        }
        OutputState::Failed => {}
    }
    let recipe_ops = find_recipe(failed.recipes, &recipe)?;
    let limits = &state.settings.limits;
    let work = failed.header.work(limits, [&recipe_ops]);
    let what = || format!("{} with `{recipe}`", failed.header.describe(limits));
    work::charge(&state, client, work, what).map_err(|refused| match refused {
        Refused::Unpayable(why) => AppError::BadRequest(why),
        Refused::Limited(limited) => limited.into(),
    })?;
    requeue(&mut tx, job, image, &recipe).await?;
    let message = requests::message(&Request {
        job_id: job,
        image_id: image,
        image_name: failed.name,
        recipe: recipe_ops,
        source_key: failed.key,
    })
    .map_err(anyhow::Error::from)?;
    state.requests.send_batch_in(&mut tx, &[message]).await?;
    JobEvents::announce(&mut *tx, &[job]).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(queued(OutputState::Queued))))
}

/// The output's row, locked, with what a request for it needs.
async fn lock_output(
    tx: &mut PgConnection,
    job: Uuid,
    image: Uuid,
    recipe: &str,
) -> AppResult<Failed> {
    let row = sqlx::query_file!("sql/output_to_retry.sql", job, image, recipe)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound)?;
    let header = Header::stored(&StoredHeader {
        content_type: &row.content_type,
        width: row.width,
        height: row.height,
        bytes_per_pixel: row.bytes_per_pixel,
        scalable: row.scalable,
    })?;
    Ok(Failed {
        state: row.state,
        name: row.name,
        key: row.storage_key,
        header,
        recipes: row.recipes,
    })
}

/// The recipe named `name` among the job's `recipes`, or the "before"
/// preview's.
fn find_recipe(recipes: serde_json::Value, name: &str) -> AppResult<Recipe> {
    if name == Recipe::BEFORE {
        return Ok(Recipe::before());
    }
    let recipes: Vec<Recipe> = serde_json::from_value(recipes).map_err(anyhow::Error::from)?;
    recipes
        .into_iter()
        .find(|r| r.name == name)
        .ok_or(AppError::NotFound)
}

/// Puts the failed output back in the queue's hands: queued, its error
/// gone, and a new event number so progress streams send it.
async fn requeue(tx: &mut PgConnection, job: Uuid, image: Uuid, recipe: &str) -> sqlx::Result<()> {
    sqlx::query_file!("sql/requeue_output.sql", job, image, recipe)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
