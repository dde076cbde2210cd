//! The browser UI: one page, its script modules and its style (no CDN),
//! served by the app.

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;
use crate::error::AppError;

const INDEX: &str = include_str!("../../assets/index.html");

/// The page's files by name: its style, and its script as ES modules, one
/// concept each (`app.js` wires them together).
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../../assets/app.css")),
    ("app.js", JS, include_str!("../../assets/app.js")),
    ("api.js", JS, include_str!("../../assets/api.js")),
    ("builder.js", JS, include_str!("../../assets/builder.js")),
    ("dom.js", JS, include_str!("../../assets/dom.js")),
    ("gallery.js", JS, include_str!("../../assets/gallery.js")),
    ("jobs.js", JS, include_str!("../../assets/jobs.js")),
    ("uploads.js", JS, include_str!("../../assets/uploads.js")),
    ("viewer.js", JS, include_str!("../../assets/viewer.js")),
];
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route("/assets/{name}", get(named_asset))
}

async fn named_asset(Path(name): Path<String>) -> Result<impl IntoResponse, AppError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or(AppError::NotFound)?;
    Ok(asset(content_type, body).await)
}

/// Scripts and style are files of their own, not inline, so the content
/// security policy can allow our own files and nothing injected.
async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_scripts_import_is_served() {
        for (_, _, body) in ASSETS {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let file = line.rsplit("\"./").next().unwrap().trim_end_matches("\";");
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == file),
                    "{line} imports a file not served"
                );
            }
        }
    }
}
