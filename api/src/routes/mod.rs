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

/// Whether the service may fetch `url` (an import source, a product image): HTTP(S) with a
/// host, and not naming a loopback, private or link-local address unless `private_ok` (the
/// setting named `setting`): the service should not be a way into its own network.
pub(crate) fn outbound_url(url: &url::Url, private_ok: bool, setting: &str) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be http or https".into());
    }
    let private = match url.host() {
        None => return Err("has no host".into()),
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
    };
    if private && !private_ok {
        return Err(format!(
            "names a loopback, private or link-local address (allowed only with {setting})"
        ));
    }
    Ok(())
}
