//! The axum edge: REST, health, metrics and admin endpoints.
//!
//! - [`state`]: [`AppState`], what every handler can reach (actor mailboxes, never pools).
//! - [`auth`]: who is calling (JWT or API key) and what they may do.
//! - [`error`]: [`ApiError`] and the one mapping of errors to HTTP statuses (problem+json).
//! - [`extract`]: a JSON body extractor whose errors name the failing field.
//! - [`etag`]: entity tags, If-Match and If-None-Match.
//! - [`middleware`]: request ids, request metrics, timeouts.
//! - [`sinks`]: the caches writes make stale (responses, API keys), emptied by the change bus.
//! - [`routes`]: the handlers, one module per route group.
//! - [`router`]: puts them together.

pub mod auth;
pub mod error;
pub mod etag;
pub mod extract;
pub mod middleware;
pub mod routes;
pub mod sinks;
pub mod state;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

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
    let s = &state.settings.server;
    let timeout = Duration::from_secs(s.request_timeout_secs);
    let body_limit = s.body_limit_bytes;
    // Every /api/v1 route but login and refresh needs a principal; /admin/* and the access
    // management routes need the admin permission. Route layers run outermost-last, so
    // `authenticate` runs before `require_admin`.
    let authenticated = axum::middleware::from_fn_with_state(state.clone(), auth::authenticate);
    let admin_only = || axum::middleware::from_fn(auth::require_admin);
    let catalog_permission = || axum::middleware::from_fn(auth::principal::require_catalog);
    let api = Router::new()
        .merge(routes::products::router().route_layer(catalog_permission()))
        .merge(routes::catalog::router().route_layer(catalog_permission()))
        .merge(routes::auth::private())
        .merge(routes::notifications::router())
        .merge(routes::jobs::router())
        .merge(routes::access::router().route_layer(admin_only()))
        .route_layer(authenticated.clone())
        .merge(routes::auth::public())
        // Authenticates itself: by header, or by a first message (browsers).
        .merge(routes::ws::router());
    let admin = routes::admin::router()
        .route_layer(admin_only())
        .route_layer(authenticated);
    Router::new()
        .merge(routes::health::router())
        .merge(routes::metrics::router())
        .merge(admin)
        .merge(routes::objects::router())
        .nest("/api/v1", api)
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
        .with_state(state)
}
