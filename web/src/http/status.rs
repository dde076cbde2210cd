//! `GET /api/jobs/{id}`: where a job stands, a page of images at a time,
//! and the views of outputs and counts that progress events share.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use common::OutputState;
use common::recipe::Recipe;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::JobAccess;
use crate::error::{AppError, AppResult, ErrorBody};

/// Images per page of a job's status, by default and at most.
const PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_job))
}

/// A job as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct JobView {
    id: Uuid,
    state: JobState,
    /// Of the whole job, whichever page this is.
    counts: Counts,
    /// When the job and its files are deleted.
    expires_at: DateTime<Utc>,
    /// Its recipes, those added since its creation last.
    recipes: Vec<Recipe>,
    /// A page of the job's images, oldest first.
    images: Vec<ImageView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Uuid>,
}

/// Where a job stands: `done` once every output is done or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobState {
    Pending,
    Running,
    Done,
}

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
    /// The counts of outputs in these states.
    pub(crate) fn of(states: impl IntoIterator<Item = OutputState>) -> Self {
        let mut counts = Counts::default();
        for state in states {
            counts.total += 1;
            match state {
                OutputState::Done => counts.done += 1,
                OutputState::Failed => counts.failed += 1,
                OutputState::Processing | OutputState::Queued => {}
            }
            counts.started += usize::from(state != OutputState::Queued);
        }
        counts
    }

    pub(crate) fn job_state(&self) -> JobState {
        if self.total > 0 && self.done + self.failed == self.total {
            JobState::Done
        } else if self.started > 0 {
            JobState::Running
        } else {
            JobState::Pending
        }
    }

    /// The counts of every output of `job` (its recipes' results: the
    /// "before" previews are not among them).
    pub(crate) async fn of_job(pool: &sqlx::PgPool, job: Uuid) -> sqlx::Result<Self> {
        let states = sqlx::query_scalar!(
            r#"select state as "state: OutputState" from outputs where job_id = $1 and recipe <> $2"#,
            job,
            Recipe::BEFORE
        )
        .fetch_all(pool)
        .await?;
        Ok(Counts::of(states))
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ImageView {
    id: Uuid,
    name: String,
    outputs: Vec<OutputView>,
    /// A JPEG of the original for browsers that cannot show it (HEIC,
    /// TIFF, JPEG XL), once made: the "before" beside each result. Its
    /// progress also streams as an output named `.before`.
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<String>,
}

/// One output as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct OutputView {
    pub recipe: String,
    pub state: OutputState,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub bytes: Option<i64>,
    pub format: Option<String>,
    /// Where to download it, once done.
    pub url: Option<String>,
    pub error: Option<String>,
}

/// An output's row as the status and the progress stream read it (the
/// status reads images without outputs too, hence the options).
pub(crate) struct OutputRow {
    pub image_id: Uuid,
    pub name: String,
    pub event: Option<i64>,
    pub recipe: Option<String>,
    pub state: Option<OutputState>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub bytes: Option<i64>,
    pub format: Option<String>,
    pub error: Option<String>,
}

impl OutputView {
    /// An output not done, in `state`.
    pub(crate) fn of_state(recipe: String, state: OutputState) -> Self {
        OutputView {
            recipe,
            state,
            width: None,
            height: None,
            bytes: None,
            format: None,
            url: None,
            error: None,
        }
    }
}

impl OutputRow {
    /// The output as the API shows it, with `url` filled in once done;
    /// `None` for an image without outputs.
    pub(crate) fn view(self, job: Uuid) -> Option<OutputView> {
        let (recipe, state) = (self.recipe?, self.state?);
        let url = (state == OutputState::Done)
            .then(|| format!("/api/jobs/{job}/images/{}/{recipe}", self.image_id));
        Some(OutputView {
            recipe,
            state,
            width: self.width,
            height: self.height,
            bytes: self.bytes,
            format: self.format,
            url,
            error: self.error,
        })
    }
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"), PageQuery),
    security(("job_token" = [])),
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
    let job = sqlx::query!("select expires_at, recipes from jobs where id = $1", id)
        .fetch_one(&state.pool)
        .await?;
    let recipes = serde_json::from_value(job.recipes).map_err(anyhow::Error::from)?;
    let counts = Counts::of_job(&state.pool, id).await?;
    let (images, next) = images_page(&state.pool, id, page.after, limit).await?;
    Ok(Json(JobView {
        id,
        state: counts.job_state(),
        counts,
        expires_at: job.expires_at,
        recipes,
        images,
        next,
    }))
}

/// `limit` images of `job` after image `after`, with their outputs, and the
/// last one's id when more follow.
async fn images_page(
    pool: &sqlx::PgPool,
    job: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> sqlx::Result<(Vec<ImageView>, Option<Uuid>)> {
    // One more image than the page holds says whether another page follows.
    let rows = sqlx::query_file_as!(
        OutputRow,
        "sql/job_status_page.sql",
        job,
        after,
        i64::from(limit) + 1,
    )
    .fetch_all(pool)
    .await?;
    let mut images: Vec<ImageView> = Vec::new();
    let mut index = BTreeMap::new();
    for r in rows {
        let slot = *index.entry(r.image_id).or_insert_with(|| {
            images.push(ImageView {
                id: r.image_id,
                name: r.name.clone(),
                outputs: Vec::new(),
                before: None,
            });
            images.len() - 1
        });
        let image = &mut images[slot];
        match r.view(job) {
            Some(preview) if preview.recipe == Recipe::BEFORE => image.before = preview.url,
            Some(output) => image.outputs.push(output),
            None => {}
        }
    }
    let next = if images.len() > limit as usize {
        images.truncate(limit as usize);
        images.last().map(|i| i.id)
    } else {
        None
    };
    Ok((images, next))
}
