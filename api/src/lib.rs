//! The axum edge: REST, health, metrics and admin endpoints.
//!
//! - [`state`]: [`AppState`], what every handler can reach (actor mailboxes, never pools).
//! - [`auth`]: who is calling (JWT or API key) and what they may do.
//! - [`error`]: [`ApiError`] and the one mapping of errors to HTTP statuses (problem+json).
//! - [`extract`]: a JSON body extractor whose errors name the failing field.
//! - [`etag`]: entity tags, If-Match and If-None-Match.
//! - [`middleware`]: request ids, request metrics, timeouts.
//! - [`openapi`]: the OpenAPI document, generated from the routes as they are registered.
//! - [`sinks`]: the caches writes make stale (responses, API keys), emptied by the change bus.
//! - [`routes`]: the handlers, one module per route group.
//! - [`router`]: puts them together.

pub mod auth;
pub mod error;
pub mod etag;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod sinks;
pub mod state;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use state::AppState;

/// CORS from `server.cors_origins`: nothing when empty; `*` for any origin; else the list.
/// Credentials are never allowed: tokens travel in the Authorization header.
fn cors(
    origins: &[String],
) -> tower::util::Either<tower_http::cors::CorsLayer, tower::layer::util::Identity> {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return tower::util::Either::Right(tower::layer::util::Identity::new());
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    tower::util::Either::Left(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
            .expose_headers([
                header::HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    router_and_document(state).0
}

/// The application and its OpenAPI document, built from the same registrations: each route
/// group's `OpenApiRouter` carries the operations of its routes, and the layers applied to a
/// group add what they answer to its operations ([`openapi::secured`],
/// [`openapi::needs_permission`]).
pub fn router_and_document(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let s = &state.settings.server;
    let timeout = Duration::from_secs(s.request_timeout_secs);
    let body_limit = s.body_limit_bytes;
    // Every /api/v1 route but login and refresh needs a principal; /admin/* and the access
    // management routes need the admin permission. Route layers run outermost-last, so
    // `authenticate` runs before `require_admin`.
    let authenticated = axum::middleware::from_fn_with_state(state.clone(), auth::authenticate);
    let admin_only = || axum::middleware::from_fn(auth::require_admin);
    let catalog_permission = || axum::middleware::from_fn(auth::principal::require_catalog);
    // Served by `GET /api/v1/openapi.json`, filled once the document is complete (it describes
    // that route too).
    let document = routes::docs::Document::default();
    let catalog = |r: OpenApiRouter<AppState>| {
        openapi::needs_permission(r, "`catalog:read` (GET) or `catalog:write` (other methods)")
            .route_layer(catalog_permission())
    };
    let admin = |r: OpenApiRouter<AppState>| {
        openapi::needs_permission(r, "the `admin` permission").route_layer(admin_only())
    };
    let api = openapi::secured(
        OpenApiRouter::new()
            .merge(catalog(routes::products::router()))
            .merge(catalog(routes::catalog::router()))
            .merge(routes::auth::private())
            .merge(routes::notifications::router())
            .merge(routes::jobs::router())
            .merge(catalog(routes::media::router(
                state.settings.media.max_upload_bytes,
            )))
            .merge(routes::code2asin::router())
            .merge(routes::imports::router(state.settings.imports.max_upload_bytes))
            .merge(admin(routes::access::router())),
    )
    .route_layer(authenticated.clone())
    .merge(routes::auth::public())
    // Authenticates itself: by header, or by a first message (browsers).
    .merge(routes::ws::router())
    .merge(routes::docs::document(document.clone()));
    let admin = openapi::secured(admin(routes::admin::router())).route_layer(authenticated);
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::base())
        .merge(routes::health::router())
        .merge(routes::metrics::router())
        .merge(admin)
        .merge(routes::docs::reference())
        .nest("/api/v1", api)
        .split_for_parts();
    openapi::finish(&mut doc);
    document.set(&doc);
    let router = router
        .merge(routes::objects::router())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn(move |req, next| {
            middleware::timeout(timeout, req, next)
        }))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(cors(&s.cors_origins))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(middleware::make_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state);
    (router, doc)
}
