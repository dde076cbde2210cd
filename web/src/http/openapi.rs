//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the HTTP APIs:
//! on the public listener the jobs API, on the admin listener everything
//! (jobs, operations and the queue API).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

use crate::http::{downloads, events, health, jobs, recipes, retry, status, uploads};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}

/// The admin listener's description, of every route of both listeners.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(|| async { Json(document()) }))
}

/// The whole description: this crate's routes and the queue API's.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(AdminDoc::openapi());
    doc.merge(queue::ApiDoc::openapi());
    doc
}

/// Routes of the admin listener beyond the queue API.
#[derive(OpenApi)]
#[openapi(paths(health::metrics))]
struct AdminDoc;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Darkroom",
        description = "Photo processing: create a job with recipes, upload images, follow their progress, download the results. Ops are described in CONTRACT.md."
    ),
    paths(
        jobs::create_job,
        jobs::delete_job,
        status::get_job,
        recipes::add_recipes,
        retry::retry_output,
        uploads::upload_images,
        events::events,
        downloads::get_output,
        downloads::get_original,
        downloads::archive,
        downloads::signed_links,
        health::healthz,
    ),
    modifiers(&JobToken),
    tags(
        (name = "jobs", description = "Jobs, uploads, progress and downloads; every call but creation needs the job's token"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

struct JobToken;

impl Modify for JobToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "job_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token returned at job creation"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "signed_link",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "sig",
                "A link from POST /api/jobs/{id}/links: its `expires` and `sig` open that one \
                 path for 15 minutes",
            ))),
        );
    }
}
