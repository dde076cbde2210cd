//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the HTTP APIs:
//! on the public listener the jobs API, on the admin listener everything
//! (jobs, operations and the queue API).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

/// Serves `doc`, the description of the listener's routes (see
/// [`document`] for the admin listener's).
pub fn router(doc: utoipa::openapi::OpenApi) -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(move || std::future::ready(Json(doc.clone()))),
    )
}

/// The admin listener's description: the public listener's routes
/// (`public`), its own (`admin`) and the queue API's, so that one document
/// describes every route of both listeners.
pub fn document(
    mut public: utoipa::openapi::OpenApi,
    admin: utoipa::openapi::OpenApi,
) -> utoipa::openapi::OpenApi {
    public.merge(admin);
    public.merge(queue::ApiDoc::openapi());
    public
}

/// What the description says beyond its paths, which come from the routes
/// (`utoipa_axum::routes!`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Darkroom",
        description = "Photo processing: create a job with recipes, upload images, follow their progress, download the results. Ops are described in CONTRACT.md."
    ),
    modifiers(&JobToken),
    tags(
        (name = "jobs", description = "Jobs, uploads, progress and downloads; every call but creation needs the job's token"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub(super) struct ApiDoc;

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
