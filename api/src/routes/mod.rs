//! Handlers, one module per route group.

pub mod access;
pub mod admin;
pub mod auth;
pub mod catalog;
pub mod code2asin;
pub mod docs;
pub mod health;
pub mod imports;
pub mod jobs;
pub mod media;
pub mod metrics;
pub mod notifications;
pub mod objects;
pub mod products;
pub mod ws;

use axum::http::{Method, Uri};

use crate::error::ApiError;

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// Whether the service may fetch `url` (an import source, a product image); see
/// [`pm_actors::outbound::check`].
pub(crate) fn outbound_url(url: &url::Url, private_ok: bool, setting: &str) -> Result<(), String> {
    pm_actors::outbound::check(url, private_ok, setting)
}
