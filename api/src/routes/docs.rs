//! `GET /api/v1/openapi.json` (the OpenAPI document, [`crate::openapi`]) and `GET /api/docs`,
//! an interactive reference on it (Swagger UI). The page's scripts and styles are embedded in
//! the binary and served from `/api/docs/assets/...`, so the reference works offline and
//! behind a firewall, and no third party learns who reads our API: the page's
//! Content-Security-Policy allows nothing from another origin. Vendored from npm, see
//! `api/assets/swagger-ui/README.md`.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::AppState;

/// The serialized document, set once when the router is complete (the document describes its
/// own route, so it exists only after that route is registered).
#[derive(Clone, Default)]
pub struct Document(Arc<OnceLock<Bytes>>);

impl Document {
    pub fn set(&self, doc: &utoipa::openapi::OpenApi) {
        let bytes = serde_json::to_vec(doc).expect("an OpenAPI document serializes");
        let _ = self.0.set(Bytes::from(bytes));
    }
}

/// `/openapi.json`, nested under `/api/v1`.
pub fn document(doc: Document) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json).layer(Extension(doc)))
}

/// `/api/docs` and its assets.
pub fn reference() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(page)).routes(routes!(asset))
}

/// The vendored Swagger UI version, for the assets' cache busting.
const SWAGGER_UI: &str = "5.35.0";

/// Assets by file name: content type and bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/init.js"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/LICENSE"),
    ),
    (
        "NOTICE",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/NOTICE"),
    ),
    (
        "swagger-ui-bundle.js.LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"),
    ),
];

/// Only this origin: scripts from files (no inline script), styles inline too (Swagger UI sets
/// some), images inline (its icons are data: URLs), requests to this service.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "docs",
    operation_id = "openapi_document",
    summary = "This OpenAPI document",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json",
        body = Object)),
)]
async fn openapi_json(Extension(doc): Extension<Document>) -> Result<Response, ApiError> {
    let bytes = doc
        .0
        .get()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("the document is being built".into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            // It changes only with a new release; a minute keeps reloads cheap and upgrades
            // visible.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn page_html() -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Products Manager API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css?v={SWAGGER_UI}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js?v={SWAGGER_UI}"></script>
<script src="/api/docs/assets/init.js?v={SWAGGER_UI}"></script>
</body>
</html>
"#
    )
}

#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "docs",
    operation_id = "api_reference",
    summary = "The interactive API reference (HTML)",
    security(()),
    responses((status = 200, description = "Swagger UI on this document.", content_type = "text/html",
        body = String)),
)]
async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        page_html(),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/api/docs/assets/{file}",
    tag = "docs",
    operation_id = "api_reference_asset",
    summary = "A script, style sheet or license of the reference",
    security(()),
    params(("file" = String, Path, description = "The asset's file name.",
        example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The asset.", content(
            (String = "text/javascript"), (String = "text/css"), (String = "text/plain"))),
        crate::openapi::NotFound,
    ),
)]
async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("no asset named {file}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Versioned by the page's `?v=`: a new release brings new URLs.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        Bytes::from_static(bytes),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_embedded_assets() {
        let html = page_html();
        let mut refs = 0;
        for attr in ["src=\"", "href=\""] {
            for part in html.split(attr).skip(1) {
                let url = part.split('"').next().unwrap();
                let file = url
                    .strip_prefix("/api/docs/assets/")
                    .unwrap_or_else(|| panic!("{url} is not an embedded asset"));
                let file = file.split('?').next().unwrap();
                assert!(ASSETS.iter().any(|(n, _, _)| *n == file), "{file}");
                refs += 1;
            }
        }
        assert_eq!(refs, 3);
        let init = std::str::from_utf8(ASSETS.iter().find(|a| a.0 == "init.js").unwrap().2).unwrap();
        assert!(
            init.contains("validatorUrl: null"),
            "the validator badge calls a third party"
        );
    }
}
