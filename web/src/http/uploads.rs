//! Image uploads: streamed to S3 file by file, one request message per
//! (image, recipe) sent in the transaction that records the outputs.
//!
//! A request is cut short, keeping and reporting the files accepted before
//! the cut, when it goes over its size (413), when the client runs out of
//! work it may ask for (429), or when a file cannot be recorded (503). Files
//! are refused one by one, the others going on, for their own faults and
//! when the job is full.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::BytesMut;
use common::probe::{self, Probe, ProbeError};
use common::protocol::{self, Request};
use common::recipe::Recipe;
use common::storage::StorageError;
use futures::StreamExt;
use queue::NewMessage;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::JobAccess;
use crate::events::JobEvents;
use crate::http::error::{AppError, AppResult, ErrorBody, retry_after_header};
use crate::rate::{Client, Limited, PER_MESSAGE};
use crate::{AppState, metrics};

/// Bytes read before judging a file: enough for the headers of common formats.
const SNIFF_BYTES: usize = 64 * 1024;

/// `max_request_bytes` caps the whole request; per-file limits are checked
/// while streaming.
pub fn router(max_request_bytes: u64) -> Router<AppState> {
    Router::new()
        .route("/api/jobs/{id}/images", post(upload_images))
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
        description = "One or more `file` parts; each file is judged on its own"),
    responses(
        (status = 201, description = "Some files accepted (rejected ones listed with their reason)", body = Uploaded),
        (status = 400, description = "No file accepted, or no file sent", body = Uploaded),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
        (status = 413, description = "Request over DARKROOM_MAX_REQUEST_BYTES; the files accepted before the cut are listed", body = Uploaded),
        (status = 429, description = "Over the client's upload or work rate (Retry-After); the files accepted before are listed", body = Uploaded),
        (status = 503, description = "A file could not be stored; the files accepted before are listed (Retry-After)", body = Uploaded),
    )
)]
pub(crate) async fn upload_images(
    State(state): State<AppState>,
    Client(client): Client,
    access: JobAccess,
    mut multipart: Multipart,
) -> AppResult<Response> {
    state.rates.upload(client)?;
    let job_id = access.job_id;
    let job = sqlx::query!(
        "select recipes, image_count from jobs where id = $1",
        job_id
    )
    .fetch_one(&state.pool)
    .await?;
    let recipes: Vec<Recipe> = serde_json::from_value(job.recipes).map_err(anyhow::Error::from)?;
    let upload = Upload {
        state: &state,
        job_id,
        client,
        recipes: &recipes,
        over_size: AtomicBool::new(false),
    };
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    let mut cut = None;
    let mut images = u32::try_from(job.image_count).unwrap_or(0);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                if upload.noticed(&e) {
                    cut = Some(Cut::TooLarge);
                } else {
                    // The stream itself is broken (client gone, bad framing):
                    // keep what already landed and say why the rest did not.
                    rejected.push(Rejected {
                        name: String::new(),
                        error: format!("upload interrupted: {e}"),
                    });
                }
                break;
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field
            .file_name()
            .map(display_name)
            .unwrap_or_else(|| "unnamed".to_owned());
        let refuse = |error: String| Rejected {
            name: name.clone(),
            error,
        };
        if accepted.len() + rejected.len() >= state.settings.max_files_per_request {
            rejected.push(refuse(format!(
                "more than {} files in one request; send the rest in another",
                state.settings.max_files_per_request
            )));
            continue;
        }
        if images >= state.settings.max_images_per_job {
            rejected.push(refuse(job_full(state.settings.max_images_per_job)));
            continue;
        }
        match upload.store_file(&name, field).await {
            Ok(a) => {
                metrics::upload_accepted(a.bytes);
                images += 1;
                accepted.push(a);
            }
            Err(FileError::Rejected(error)) => {
                metrics::upload_rejected();
                rejected.push(refuse(error));
            }
            Err(FileError::TooLarge) => {
                rejected.push(refuse(format!(
                    "the request went over its limit of {} bytes (DARKROOM_MAX_REQUEST_BYTES) \
                     while this file was read; send it in another request",
                    state.settings.max_request_bytes
                )));
                cut = Some(Cut::TooLarge);
                break;
            }
            Err(FileError::Limited(limited)) => {
                rejected.push(refuse(format!(
                    "not read: you have asked for too much processing for now; send it again \
                     in {} s",
                    limited.retry_after.as_secs().max(1)
                )));
                cut = Some(Cut::Limited(limited));
                break;
            }
            Err(FileError::Internal(e)) => {
                tracing::error!(job = %job_id, error = format!("{e:#}"), "storing an upload failed");
                rejected.push(refuse(
                    "could not be stored (a server fault, logged); send it again".into(),
                ));
                cut = Some(Cut::Unavailable);
                break;
            }
        }
    }
    if accepted.is_empty() && rejected.is_empty() && cut.is_none() {
        return Err(AppError::BadRequest(
            "no files: send multipart/form-data with one or more `file` parts".into(),
        ));
    }
    tracing::info!(job = %job_id, accepted = accepted.len(), rejected = rejected.len(), "upload");
    if !accepted.is_empty()
        && let Err(e) = JobEvents::announce(&state.pool, &[job_id]).await
    {
        tracing::debug!(error = %e, "announcing new images failed; streams will notice by polling");
    }
    Ok(answer(&state, accepted, rejected, cut))
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

enum FileError {
    /// This file is refused; the others go on.
    Rejected(String),
    /// The request's size limit was reached while reading this file.
    TooLarge,
    /// The client may not ask for this file's work now.
    Limited(Limited),
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for FileError {
    fn from(e: sqlx::Error) -> Self {
        FileError::Internal(e.into())
    }
}

/// A user's file name, kept for display only: it never reaches a key or path.
/// Controls go, and so do Unicode format characters (general category Cf):
/// a right-to-left override can make `photo\u{202e}gpj.exe` show as
/// `photoexe.jpg`, and zero-width ones make two names look the same.
fn display_name(raw: &str) -> String {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && c.general_category() != GeneralCategory::Format)
        .take(255)
        .collect();
    if clean.is_empty() {
        "unnamed".into()
    } else {
        clean
    }
}

/// One upload request in progress.
struct Upload<'a> {
    state: &'a AppState,
    job_id: Uuid,
    client: IpAddr,
    recipes: &'a [Recipe],
    /// Set when the body went over the request's size limit: the multipart
    /// reader then reports a broken stream, which this tells apart.
    over_size: AtomicBool,
}

impl Upload<'_> {
    /// Whether `e` is the request going over its size limit (and notes it).
    fn noticed(&self, e: &MultipartError) -> bool {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            self.over_size.store(true, Ordering::Relaxed);
        }
        self.over_size.load(Ordering::Relaxed)
    }

    async fn store_file(&self, name: &str, mut field: Field<'_>) -> Result<Accepted, FileError> {
        let state = self.state;
        let limits = &state.settings.limits;
        let mut head = BytesMut::new();
        let mut complete = false;
        while head.len() < SNIFF_BYTES {
            match field.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                Ok(None) => {
                    complete = true;
                    break;
                }
                Err(e) if self.noticed(&e) => return Err(FileError::TooLarge),
                Err(e) => return Err(FileError::Rejected(format!("upload interrupted: {e}"))),
            }
        }
        if head.is_empty() {
            return Err(FileError::Rejected("file is empty".into()));
        }
        let format = probe::sniff_format(&head).map_err(|e| FileError::Rejected(e.to_string()))?;
        match probe::probe(&head, limits) {
            Ok(probe) => self.charge(&probe)?,
            // A header cut by our read window says nothing yet: the worker
            // checks the whole file again before decoding.
            Err(ProbeError::Corrupt(_)) if !complete => {}
            Err(e) => return Err(FileError::Rejected(e.to_string())),
        }
        let image_id = Uuid::new_v4();
        let key = protocol::source_key(self.job_id, image_id);
        let content_type = format.to_mime_type();
        let rest = field.inspect(|chunk| {
            if let Err(e) = chunk {
                self.noticed(e);
            }
        });
        let bytes = state
            .storage
            .put_stream(&key, content_type, head.freeze(), rest, limits.max_bytes)
            .await
            .map_err(|e| match e {
                _ if self.over_size.load(Ordering::Relaxed) => FileError::TooLarge,
                StorageError::TooLarge { limit } => {
                    FileError::Rejected(format!("file is over the limit of {limit} bytes"))
                }
                StorageError::Source(m) => FileError::Rejected(format!("upload interrupted: {m}")),
                e => FileError::Internal(e.into()),
            })?;
        let recorded = record_image(
            state,
            self.job_id,
            image_id,
            name,
            bytes,
            content_type,
            &key,
            self.recipes,
        )
        .await;
        if !matches!(recorded, Ok(true)) {
            // The object is nobody's: delete it now rather than leave it to
            // the job's expiry.
            if let Err(e) = state.storage.delete(&key).await {
                tracing::warn!(key, error = %e, "deleting an unrecorded upload failed; it goes when its job expires");
            }
        }
        match recorded {
            Ok(true) => Ok(Accepted {
                id: image_id,
                name: name.to_owned(),
                bytes,
                format: format.extensions_str()[0].to_owned(),
            }),
            Ok(false) => Err(FileError::Rejected(job_full(
                state.settings.max_images_per_job,
            ))),
            Err(e) => Err(FileError::Internal(e)),
        }
    }

    /// Charges the work this image will cost with every recipe of the job
    /// to the client's work rate.
    fn charge(&self, probe: &Probe) -> Result<(), FileError> {
        let work: u64 = self
            .recipes
            .iter()
            .map(|r| probe::estimate(probe, 0, &r.ops, None).megapixel_passes() + PER_MESSAGE)
            .sum();
        let rates = &self.state.settings.rates;
        if !self.state.rates.payable(work, rates) {
            return Err(FileError::Rejected(format!(
                "this {}×{} image with this job's recipes costs {work} megapixel passes of work, \
                 more than a client may ask for in a minute ({}, DARKROOM_RATE_LIMIT_WORK); use \
                 a smaller image or fewer recipes",
                probe.width, probe.height, rates.work_per_minute
            )));
        }
        self.state
            .rates
            .work(self.client, work)
            .map_err(FileError::Limited)
    }
}

/// Records the image and its outputs and enqueues their requests atomically:
/// either all of them exist afterwards or none does. Returns false, having
/// recorded nothing, when the job is full.
#[allow(clippy::too_many_arguments)]
async fn record_image(
    state: &AppState,
    job_id: Uuid,
    image_id: Uuid,
    name: &str,
    bytes: u64,
    content_type: &str,
    key: &str,
    recipes: &[Recipe],
) -> anyhow::Result<bool> {
    let mut tx = state.pool.begin().await?;
    // Claims a place in the job: concurrent uploads to one job take turns
    // on its row here, so the quota holds whatever their number.
    let claimed = sqlx::query_scalar!(
        r#"
        update jobs set image_count = image_count + 1
        where id = $1 and image_count < $2
        returning image_count
        "#,
        job_id,
        i32::try_from(state.settings.max_images_per_job).unwrap_or(i32::MAX)
    )
    .fetch_optional(&mut *tx)
    .await?;
    if claimed.is_none() {
        return Ok(false);
    }
    sqlx::query!(
        r#"
        insert into images (id, job_id, name, bytes, content_type, storage_key)
        values ($1, $2, $3, $4, $5, $6)
        "#,
        image_id,
        job_id,
        name,
        bytes as i64,
        content_type,
        key
    )
    .execute(&mut *tx)
    .await?;
    let names: Vec<String> = recipes.iter().map(|r| r.name.clone()).collect();
    sqlx::query!(
        r#"
        insert into outputs (image_id, recipe, job_id)
        select $1, r, $2 from unnest($3::text[]) as r
        "#,
        image_id,
        job_id,
        &names
    )
    .execute(&mut *tx)
    .await?;
    let messages = recipes
        .iter()
        .map(|recipe| {
            let request = Request {
                job_id,
                image_id,
                image_name: name.to_owned(),
                recipe: recipe.clone(),
                source_key: key.to_owned(),
            };
            serde_json::to_string(&request).map(NewMessage::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    state.requests.send_batch_in(&mut tx, &messages).await?;
    tx.commit().await?;
    state.requests.notify();
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_drop_paths_and_controls() {
        assert_eq!(display_name("../../x.jpg"), "x.jpg");
        assert_eq!(display_name("C:\\pics\\a\nb.png"), "ab.png");
        assert_eq!(display_name("/"), "unnamed");
    }

    #[test]
    fn display_names_drop_unicode_format_characters() {
        assert_eq!(display_name("photo\u{202e}gpj.exe"), "photogpj.exe");
        assert_eq!(display_name("a\u{200b}b\u{feff}.png"), "ab.png");
        assert_eq!(display_name("\u{2066}\u{2069}"), "unnamed");
    }
}
