//! Image uploads: streamed to S3 file by file, one request message per
//! (image, recipe) sent in the transaction that records the outputs.

use axum::extract::multipart::Field;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bytes::BytesMut;
use queue::NewMessage;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;
use worker::engine::{self, EngineError};
use worker::protocol::{self, Request};
use worker::recipe::Recipe;
use worker::storage::StorageError;

use crate::auth::JobAccess;
use crate::events::JobEvents;
use crate::http::error::{AppError, AppResult, ErrorBody};
use crate::http::openapi::{UploadForm, Uploaded};
use crate::{AppState, metrics};

/// Bytes read before judging a file: enough for the headers of common formats.
const SNIFF_BYTES: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/jobs/{id}/images", post(upload_images))
        // Per-file limits are enforced while streaming; this caps a request.
        .layer(DefaultBodyLimit::max(usize::MAX))
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

#[utoipa::path(post, path = "/api/jobs/{id}/images", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    security(("job_token" = []), ("job_token_query" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Some files accepted (rejected ones listed with their reason)", body = Uploaded),
        (status = 400, description = "No file accepted, or no file sent", body = Uploaded),
        (status = 404, description = "No such job, or a wrong or missing token", body = ErrorBody),
    )
)]
pub(crate) async fn upload_images(
    State(state): State<AppState>,
    access: JobAccess,
    mut multipart: Multipart,
) -> AppResult<(StatusCode, Json<Value>)> {
    let job_id = access.job_id;
    let recipes_json = sqlx::query_scalar!("select recipes from jobs where id = $1", job_id)
        .fetch_one(&state.pool)
        .await?;
    let recipes: Vec<Recipe> = serde_json::from_value(recipes_json).map_err(anyhow::Error::from)?;
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    let mut total_bytes = 0u64;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                // The stream itself is broken (client gone, bad framing): keep
                // what already landed and say why the rest did not.
                rejected.push(Rejected {
                    name: String::new(),
                    error: format!("upload interrupted: {e}"),
                });
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
        if accepted.len() + rejected.len() >= state.settings.max_files_per_request {
            rejected.push(Rejected {
                name,
                error: format!(
                    "more than {} files in one request; send the rest in another",
                    state.settings.max_files_per_request
                ),
            });
            continue;
        }
        match store_file(&state, job_id, &recipes, &name, field).await {
            Ok(a) => {
                total_bytes += a.bytes;
                metrics::upload_accepted(a.bytes);
                accepted.push(a);
            }
            Err(FileError::Rejected(error)) => {
                metrics::upload_rejected();
                rejected.push(Rejected { name, error });
            }
            Err(FileError::Internal(e)) => return Err(e),
        }
    }
    if accepted.is_empty() && rejected.is_empty() {
        return Err(AppError::BadRequest(
            "no files: send multipart/form-data with one or more `file` parts".into(),
        ));
    }
    tracing::info!(job = %job_id, accepted = accepted.len(), rejected = rejected.len(), total_bytes, "upload");
    if !accepted.is_empty()
        && let Err(e) = JobEvents::announce(&state.pool, &[job_id]).await
    {
        tracing::debug!(error = %e, "announcing new images failed; streams will notice by polling");
    }
    let status = if accepted.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::CREATED
    };
    let mut body = json!({ "images": accepted, "errors": rejected });
    if accepted.is_empty() {
        body["error"] = json!(format!("no file was accepted: {}", rejected[0].error));
    }
    Ok((status, Json(body)))
}

enum FileError {
    /// This file is refused; the others go on.
    Rejected(String),
    Internal(AppError),
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

async fn store_file(
    state: &AppState,
    job_id: Uuid,
    recipes: &[Recipe],
    name: &str,
    mut field: Field<'_>,
) -> Result<Accepted, FileError> {
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
            Err(e) => return Err(FileError::Rejected(format!("upload interrupted: {e}"))),
        }
    }
    if head.is_empty() {
        return Err(FileError::Rejected("file is empty".into()));
    }
    let format = engine::sniff_format(&head).map_err(|e| FileError::Rejected(e.to_string()))?;
    match engine::probe(&head, limits) {
        Ok(_) => {}
        // A header cut by our read window says nothing yet: the worker checks
        // the whole file again before decoding.
        Err(EngineError::Corrupt(_)) if !complete => {}
        Err(e) => return Err(FileError::Rejected(e.to_string())),
    }
    let image_id = Uuid::new_v4();
    let key = protocol::source_key(job_id, image_id);
    let content_type = format.to_mime_type();
    let bytes = state
        .storage
        .put_stream(
            &key,
            content_type,
            head.freeze(),
            Box::pin(field),
            limits.max_bytes,
        )
        .await
        .map_err(|e| match e {
            StorageError::TooLarge { limit } => {
                FileError::Rejected(format!("file is over the limit of {limit} bytes"))
            }
            StorageError::Source(m) => FileError::Rejected(format!("upload interrupted: {m}")),
            e => FileError::Internal(e.into()),
        })?;
    record_image(
        state,
        job_id,
        image_id,
        name,
        bytes,
        content_type,
        &key,
        recipes,
    )
    .await
    .map_err(FileError::Internal)?;
    Ok(Accepted {
        id: image_id,
        name: name.to_owned(),
        bytes,
        format: format.extensions_str()[0].to_owned(),
    })
}

/// Records the image and its outputs and enqueues their requests atomically:
/// either all of them exist afterwards or none does.
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
) -> AppResult<()> {
    let mut tx = state.pool.begin().await?;
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
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::from)?;
    state.requests.send_batch_in(&mut tx, &messages).await?;
    tx.commit().await?;
    state.requests.notify();
    Ok(())
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
