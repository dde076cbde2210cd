//! Downloads: one output, the original of an image, or every finished output
//! of a job as a zip archive streamed straight from S3; and signed links to
//! them (and to the progress stream), for plain URLs that cannot carry the
//! job's token.

use std::collections::HashSet;

use async_zip::tokio::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use common::probe::InputFormat;
use common::recipe::{OutputFormat, Recipe};
use common::storage::Storage;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::DuplexStream;
use tokio_util::compat::TokioAsyncReadCompatExt;
use tokio_util::io::ReaderStream;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::JobAccess;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::{AppState, links};

/// Most paths signed by one request: a page of the job's status (100
/// images, their originals and up to 16 outputs each) and then some.
const MAX_LINKS: usize = 2000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signed_links))
        .routes(routes!(archive))
        .routes(routes!(get_original))
        .routes(routes!(get_output))
}

/// Paths of the job to sign.
#[derive(Deserialize, ToSchema)]
pub(crate) struct LinkRequest {
    /// Each `/api/jobs/{id}/archive`, `/api/jobs/{id}/events` or
    /// `/api/jobs/{id}/images/{image_id}/{recipe or original}` of this job.
    paths: Vec<String>,
}

/// Signed links, in the order of the paths asked for.
#[derive(Serialize, ToSchema)]
pub(crate) struct SignedLinks {
    /// Each path with `?expires=&sig=`: a GET of it needs no token.
    links: Vec<String>,
    /// When they stop opening their paths (15 minutes on).
    expires_at: DateTime<Utc>,
}

/// Signs paths of the job for 15 minutes, for URLs that cannot carry the
/// token in a header: `<img>`, download links, `EventSource`.
#[utoipa::path(post, path = "/api/jobs/{id}/links", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    request_body = LinkRequest,
    security(("job_token" = [])),
    responses(
        (status = 200, description = "A signed link for each path", body = SignedLinks),
        (status = 400, description = "A path that is no download or progress stream of this job, or too many", body = ErrorBody),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
    )
)]
pub(crate) async fn signed_links(
    State(state): State<AppState>,
    access: JobAccess,
    Json(request): Json<LinkRequest>,
) -> AppResult<Json<SignedLinks>> {
    if request.paths.len() > MAX_LINKS {
        return Err(AppError::BadRequest(format!(
            "at most {MAX_LINKS} paths a request"
        )));
    }
    if let Some(path) = request.paths.iter().find(|p| !signable(access.job_id, p)) {
        return Err(AppError::BadRequest(format!(
            "{path:?} is no download or progress stream of this job"
        )));
    }
    let key = &state.settings.link_key;
    let expires = links::unix_now() + links::LINK_LIFETIME.as_secs();
    let links = request.paths.iter().map(|p| key.link(p, expires)).collect();
    let expires_at = i64::try_from(expires)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or_else(Utc::now);
    Ok(Json(SignedLinks { links, expires_at }))
}

/// Whether `path` is one a signed link may open: a file of `job`, or its
/// progress stream; never what changes something or the job's status.
fn signable(job: Uuid, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(&format!("/api/jobs/{job}/")) else {
        return false;
    };
    match rest.split('/').collect::<Vec<_>>()[..] {
        ["archive"] | ["events"] => true,
        ["images", image, name] => {
            image.parse::<Uuid>().is_ok() && (is_recipe_name(name) || name == Recipe::BEFORE)
        }
        _ => false,
    }
}

/// Recipe names (and `original`) as job creation allows them.
fn is_recipe_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An output's recorded format (`OutputFormat::as_str`).
fn output_format(name: &str) -> OutputFormat {
    OutputFormat::from_extension(name).unwrap_or(OutputFormat::Png)
}

#[utoipa::path(get, path = "/api/jobs/{id}/images/{image_id}/{recipe}", tag = "jobs",
    params(
        ("id" = Uuid, Path, description = "Job id"),
        ("image_id" = Uuid, Path, description = "Image id"),
        ("recipe" = String, Path, description = "Recipe name"),
    ),
    security(("job_token" = []), ("signed_link" = [])),
    responses(
        (status = 200, description = "The output image (JPEG, PNG, WebP or AVIF)", content_type = "image/*", body = Vec<u8>),
        (status = 404, description = "No such finished output, or a wrong or missing token or signed link", body = ErrorBody),
    )
)]
pub(crate) async fn get_output(
    State(state): State<AppState>,
    access: JobAccess,
    Path((_, image_id, recipe)): Path<(Uuid, Uuid, String)>,
) -> AppResult<Response> {
    let id = access.job_id;
    let output = sqlx::query_file!("sql/one_result.sql", id, image_id, recipe)
        .fetch_optional(&state.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    let format = output_format(&output.format);
    let stream = state.storage.get_stream(&output.storage_key).await?;
    let body = Body::from_stream(ReaderStream::new(stream.into_async_read()));
    let filename = download_name(&output.name, &recipe, format.extension());
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(output.bytes));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// The uploaded file itself (the "before" of the gallery).
#[utoipa::path(get, path = "/api/jobs/{id}/images/{image_id}/original", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"), ("image_id" = Uuid, Path, description = "Image id")),
    security(("job_token" = []), ("signed_link" = [])),
    responses(
        (status = 200, description = "The uploaded file", content_type = "image/*", body = Vec<u8>),
        (status = 404, description = "No such job, or a wrong or missing token or signed link", body = ErrorBody),
    )
)]
pub(crate) async fn get_original(
    State(state): State<AppState>,
    access: JobAccess,
    Path((_, image_id)): Path<(Uuid, Uuid)>,
) -> AppResult<Response> {
    let id = access.job_id;
    let image = sqlx::query!(
        "select name, storage_key, content_type, bytes from images where job_id = $1 and id = $2",
        id,
        image_id
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let stream = state.storage.get_stream(&image.storage_key).await?;
    let mut response =
        Body::from_stream(ReaderStream::new(stream.into_async_read())).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&image.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(image.bytes));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    // Bytes a user uploaded are offered for saving, never rendered as a page
    // of this origin (images still show in <img>).
    let name = download_name(&image.name, "original", extension(&image.content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Every finished output of the job, as a zip streamed while it is written:
/// entries are stored, not compressed (images are compressed already), and
/// only one output is in flight at a time, whatever the job's size.
#[utoipa::path(get, path = "/api/jobs/{id}/archive", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    security(("job_token" = []), ("signed_link" = [])),
    responses(
        (status = 200, description = "Every finished output, as a zip", content_type = "application/zip", body = Vec<u8>),
        (status = 409, description = "No output is finished yet", body = ErrorBody),
        (status = 404, description = "No such job, or a wrong or missing token or signed link", body = ErrorBody),
    )
)]
pub(crate) async fn archive(
    State(state): State<AppState>,
    access: JobAccess,
) -> AppResult<Response> {
    let id = access.job_id;
    let outputs = sqlx::query_file!("sql/job_results.sql", id, Recipe::BEFORE)
        .fetch_all(&state.pool)
        .await?;
    if outputs.is_empty() {
        return Err(AppError::Conflict(
            "no output of this job is finished yet; try again when some are done".into(),
        ));
    }
    let mut names = HashSet::new();
    let entries: Vec<(String, String)> = outputs
        .into_iter()
        .map(|o| {
            let name = download_name(&o.name, &o.recipe, output_format(&o.format).extension());
            (unique_name(name, &mut names), o.storage_key)
        })
        .collect();
    let mut response = zip_stream(state.storage.clone(), id, entries).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"darkroom-{}.zip\"",
        &id.simple().to_string()[..8]
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// A body that streams a zip of `entries` (name, object key) as it is
/// written, one object at a time.
fn zip_stream(storage: Storage, job: Uuid, entries: Vec<(String, String)>) -> Body {
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let result = write_zip(&storage, &entries, writer).await;
        if let Err(e) = &result {
            tracing::warn!(%job, error = format!("{e:#}"), "zip archive failed midway");
        }
        let _ = done_tx.send(result.is_ok());
    });
    // The zip ends when its writer is dropped; a failed one must not look
    // complete, so the body then ends in an error and the client sees a
    // broken download instead of a short archive.
    let tail = futures::stream::once(async move {
        match done_rx.await {
            Ok(true) => None,
            _ => Some(Err(std::io::Error::other("archive failed midway"))),
        }
    })
    .filter_map(std::future::ready);
    Body::from_stream(ReaderStream::new(reader).chain(tail))
}

async fn write_zip(
    storage: &Storage,
    entries: &[(String, String)],
    writer: DuplexStream,
) -> anyhow::Result<()> {
    let mut zip = ZipFileWriter::with_tokio(writer);
    for (name, key) in entries {
        let object = storage.get_stream(key).await?;
        let mut entry = zip
            .write_entry_stream(ZipEntryBuilder::new(
                name.clone().into(),
                Compression::Stored,
            ))
            .await?;
        futures::io::copy(&mut object.into_async_read().compat(), &mut entry).await?;
        entry.close().await?;
    }
    zip.close().await?;
    Ok(())
}

/// The usual extension of an image type we accept.
fn extension(content_type: &str) -> &'static str {
    InputFormat::from_mime_type(content_type).map_or("bin", InputFormat::extension)
}

/// `name`, or `name` with `-2`, `-3`... before its extension when taken.
fn unique_name(name: String, taken: &mut HashSet<String>) -> String {
    if taken.insert(name.clone()) {
        return name;
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
    (2..)
        .map(|n| format!("{stem}-{n}.{ext}"))
        .find(|candidate| taken.insert(candidate.clone()))
        .expect("some suffix is free")
}

/// `photo.png` + `thumb` → `photo-thumb.jpg`, keeping only safe characters.
pub fn download_name(original: &str, recipe: &str, ext: &str) -> String {
    let base = original.rsplit(['/', '\\']).next().unwrap_or(original);
    let stem = match base.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => base,
    };
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let clean = if clean.is_empty() {
        "image".into()
    } else {
        clean
    };
    format!("{clean}-{recipe}.{ext}")
}

#[cfg(test)]
mod tests;
