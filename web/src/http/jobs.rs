//! Jobs: create, status, output downloads.

use std::collections::{BTreeMap, HashSet};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::io::ReaderStream;
use uuid::Uuid;
use worker::recipe::Recipe;

use crate::AppState;
use crate::auth::{authorize, new_token, presented_token};
use crate::http::error::{AppError, AppResult};

/// Most recipes in one job.
const MAX_RECIPES: usize = 16;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/jobs", post(create_job))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/jobs/{id}/images/{image_id}/{recipe}", get(get_output))
}

#[derive(Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

/// Parses `{"recipes":[...]}`, naming the field at fault.
pub fn parse_recipes(body: &[u8]) -> AppResult<Vec<Recipe>> {
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

async fn create_job(
    State(state): State<AppState>,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    let recipes = parse_recipes(&body)?;
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

#[derive(Serialize)]
struct JobView {
    id: Uuid,
    state: &'static str,
    counts: Counts,
    images: Vec<ImageView>,
}

#[derive(Serialize, Default)]
struct Counts {
    total: usize,
    done: usize,
    failed: usize,
}

#[derive(Serialize)]
struct ImageView {
    id: Uuid,
    name: String,
    outputs: Vec<OutputView>,
}

#[derive(Serialize)]
struct OutputView {
    recipe: String,
    state: String,
    width: Option<i32>,
    height: Option<i32>,
    bytes: Option<i64>,
    format: Option<String>,
    url: Option<String>,
    error: Option<String>,
}

async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> AppResult<Json<JobView>> {
    authorize(
        &state.pool,
        id,
        presented_token(&headers, q.token.as_deref()),
    )
    .await?;
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
    let mut started = false;
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
        counts.total += 1;
        match output_state.as_str() {
            "done" => counts.done += 1,
            "failed" => counts.failed += 1,
            _ => {}
        }
        started |= output_state != "queued";
        let url = (output_state == "done")
            .then(|| format!("/api/jobs/{id}/images/{}/{recipe}", r.image_id));
        images[slot].outputs.push(OutputView {
            recipe,
            state: output_state,
            width: r.width,
            height: r.height,
            bytes: r.bytes,
            format: r.format,
            url,
            error: r.error,
        });
    }
    let job_state = if counts.total > 0 && counts.done + counts.failed == counts.total {
        "done"
    } else if started {
        "running"
    } else {
        "pending"
    };
    Ok(Json(JobView {
        id,
        state: job_state,
        counts,
        images,
    }))
}

async fn get_output(
    State(state): State<AppState>,
    Path((id, image_id, recipe)): Path<(Uuid, Uuid, String)>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    authorize(
        &state.pool,
        id,
        presented_token(&headers, q.token.as_deref()),
    )
    .await?;
    let output = sqlx::query!(
        r#"
        select o.storage_key as "storage_key!", o.format as "format!", o.bytes as "bytes!", i.name
        from outputs o join images i on i.id = o.image_id
        where o.job_id = $1 and o.image_id = $2 and o.recipe = $3 and o.state = 'done'
          and o.storage_key is not null and o.format is not null and o.bytes is not null
        "#,
        id,
        image_id,
        recipe
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let format = match output.format.as_str() {
        "jpeg" => worker::recipe::OutputFormat::Jpeg,
        "webp" => worker::recipe::OutputFormat::Webp,
        _ => worker::recipe::OutputFormat::Png,
    };
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
mod tests {
    use super::*;

    #[test]
    fn download_names_are_sanitised() {
        assert_eq!(
            download_name("../../etc/passwd", "thumb", "jpg"),
            "passwd-thumb.jpg"
        );
        assert_eq!(
            download_name("rocket.jpg", "thumb", "jpg"),
            "rocket-thumb.jpg"
        );
    }

    #[test]
    fn duplicate_recipe_names_are_rejected() {
        let body = br#"{"recipes":[{"name":"a","ops":[{"op":"flip","axis":"vertical"}]},{"name":"a","ops":[{"op":"flip","axis":"vertical"}]}]}"#;
        assert!(matches!(parse_recipes(body), Err(AppError::BadRequest(m)) if m.contains("twice")));
    }
}
