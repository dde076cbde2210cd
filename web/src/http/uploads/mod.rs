//! Image uploads: streamed to S3 file by file, one request message per
//! (image, recipe) sent in the transaction that records the outputs.
//!
//! A request is cut short, keeping and reporting the files accepted before
//! the cut, when it goes over its size (413), when the client runs out of
//! work it may ask for (429), or when a file cannot be recorded (503). Files
//! are refused one by one, the others going on, for their own faults and
//! when the job is full.

mod file;
mod record;

pub use record::Recorder;

use std::sync::atomic::AtomicBool;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqlx::postgres::types::PgInterval;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::UploadAccess;
use crate::error::{AppError, AppResult, ErrorBody, retry_after_header};
use crate::rate::{Client, Limited};
use crate::{AppState, metrics};

use file::{Upload, display_name};

/// `max_request_bytes` caps the whole request; per-file limits are checked
/// while streaming.
pub fn router(max_request_bytes: u64) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_images))
        .layer(DefaultBodyLimit::max(
            usize::try_from(max_request_bytes).unwrap_or(usize::MAX),
        ))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Accepted {
    id: Uuid,
    name: String,
    bytes: u64,
    format: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Rejected {
    name: String,
    error: String,
}

/// What became of each uploaded file.
#[derive(Serialize, ToSchema)]
pub(crate) struct Uploaded {
    images: Vec<Accepted>,
    errors: Vec<Rejected>,
    /// Present when no file was accepted, or the request was cut short.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Why a request stopped before its last file.
enum Cut {
    /// Over `max_request_bytes`.
    TooLarge,
    /// Over the client's work rate.
    Limited(Limited),
    /// A file could not be recorded (Postgres or S3 failing).
    Unavailable,
}

#[utoipa::path(post, path = "/api/jobs/{id}/images", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    security(("job_token" = [])),
    request_body(content_type = "multipart/form-data",
        description = "One or more `file` parts, each a JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF, AVIF or JPEG XL (sniffed from its bytes); each file is judged on its own"),
    responses(
        (status = 201, description = "Some files accepted (rejected ones listed with their reason)", body = Uploaded),
        (status = 400, description = "No file accepted, or no file sent", body = Uploaded),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
        (status = 413, description = "Request over DARKROOM_MAX_REQUEST_BYTES; the files accepted before the cut are listed", body = Uploaded),
        (status = 429, description = "Over the client's upload or work rate, or its uploads in progress (Retry-After); the files accepted before are listed", body = Uploaded),
        (status = 503, description = "A file could not be stored; the files accepted before are listed (Retry-After)", body = Uploaded),
    )
)]
pub(crate) async fn upload_images(
    State(state): State<AppState>,
    Client(client): Client,
    access: UploadAccess,
    mut multipart: Multipart,
) -> AppResult<Response> {
    state.rates.upload(client)?;
    let cap = state.settings.max_uploads_per_client;
    let _in_progress = state.uploads.take(client, cap).ok_or_else(|| AppError::TooManyRequests {
        message: format!(
            "your address already has {cap} uploads in progress (DARKROOM_MAX_UPLOADS_PER_CLIENT); \
             send this one when one of them is done"
        ),
        retry_after: std::time::Duration::from_secs(1),
    })?;
    let job_id = access.job_id;
    let upload = Upload {
        state: &state,
        job_id,
        client,
        recipes: &access.recipes,
        over_size: AtomicBool::new(false),
    };
    let images = access.image_count;
    if images == 0 {
        keep_for_its_full_term(&state, job_id).await?;
    }
    let Received {
        accepted,
        rejected,
        cut,
    } = receive(&upload, &mut multipart, images).await;
    if accepted.is_empty() && rejected.is_empty() && cut.is_none() {
        return Err(AppError::BadRequest(
            "no files: send multipart/form-data with one or more `file` parts".into(),
        ));
    }
    tracing::info!(job = %job_id, accepted = accepted.len(), rejected = rejected.len(), "upload");
    Ok(answer(&state, accepted, rejected, cut))
}

/// Gives a job its first images' full `DARKROOM_JOB_TTL`: until then it was
/// kept only `DARKROOM_EMPTY_JOB_TTL`, so a job nobody uploads to (and the
/// progress streams that follow it) goes soon.
async fn keep_for_its_full_term(state: &AppState, job: Uuid) -> AppResult<()> {
    let ttl = PgInterval::try_from(state.settings.job_ttl).map_err(|e| anyhow::anyhow!("{e}"))?;
    sqlx::query!(
        "update jobs set expires_at = greatest(expires_at, created_at + $2) where id = $1",
        job,
        ttl
    )
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// What became of a request's files, and why it stopped early if it did.
#[derive(Default)]
struct Received {
    accepted: Vec<Accepted>,
    rejected: Vec<Rejected>,
    cut: Option<Cut>,
}

/// Reads the files of a request one by one, storing what may be kept,
/// until the last or until a cut; `images` is what the job held before.
async fn receive(upload: &Upload<'_>, multipart: &mut Multipart, mut images: u32) -> Received {
    let settings = &upload.state.settings;
    let mut got = Received::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return got,
            Err(e) => {
                if upload.noticed(&e) {
                    got.cut = Some(Cut::TooLarge);
                } else {
                    // The stream itself is broken (client gone, bad framing):
                    // keep what already landed and say why the rest did not.
                    got.rejected.push(Rejected {
                        name: String::new(),
                        error: format!("upload interrupted: {e}"),
                    });
                }
                return got;
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field
            .file_name()
            .map(display_name)
            .unwrap_or_else(|| "unnamed".to_owned());
        let refusal = if got.accepted.len() + got.rejected.len() >= settings.max_files_per_request {
            Some(format!(
                "more than {} files in one request; send the rest in another",
                settings.max_files_per_request
            ))
        } else if images >= settings.max_images_per_job {
            Some(job_full(settings.max_images_per_job))
        } else {
            None
        };
        if let Some(error) = refusal {
            got.rejected.push(Rejected { name, error });
            continue;
        }
        match upload.store_file(&name, field).await {
            Ok(a) => {
                metrics::upload_accepted(a.bytes);
                images += 1;
                got.accepted.push(a);
            }
            Err(e) => {
                let (error, cut) = e.explain(upload);
                got.rejected.push(Rejected { name, error });
                if cut.is_some() {
                    got.cut = cut;
                    return got;
                }
            }
        }
    }
}

fn job_full(max: u32) -> String {
    format!(
        "this job holds its limit of {max} images (DARKROOM_MAX_IMAGES_PER_JOB); start another \
         job for more"
    )
}

/// The status and body for what became of the files, and why the request
/// stopped early, if it did.
fn answer(
    state: &AppState,
    images: Vec<Accepted>,
    errors: Vec<Rejected>,
    cut: Option<Cut>,
) -> Response {
    let kept = if images.is_empty() {
        "no file was kept".to_owned()
    } else {
        format!("the {} files listed in `images` were kept", images.len())
    };
    let (status, error, retry_after) = match cut {
        Some(Cut::TooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(format!(
                "the request is over the limit of {} bytes (DARKROOM_MAX_REQUEST_BYTES); {kept}; \
                 send the rest in another request",
                state.settings.max_request_bytes
            )),
            None,
        ),
        Some(Cut::Limited(limited)) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "too many images to process from your address; {kept}; send the rest in {} s",
                limited.retry_after.as_secs().max(1)
            )),
            Some(limited.retry_after),
        ),
        Some(Cut::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(format!(
                "a file could not be stored; {kept}; send the rest again"
            )),
            Some(std::time::Duration::from_secs(5)),
        ),
        None if images.is_empty() => (
            StatusCode::BAD_REQUEST,
            Some(format!("no file was accepted: {}", errors[0].error)),
            None,
        ),
        None => (StatusCode::CREATED, None, None),
    };
    let mut response = (
        status,
        Json(Uploaded {
            images,
            errors,
            error,
        }),
    )
        .into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after_header(after));
    }
    response
}
