//! Cross-cutting request handling: tracing spans with the request id, request metrics and the
//! request deadline.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::Method;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Span;

use crate::error::ApiError;

/// The span of one request; every log line inside carries the request id.
pub fn make_span(req: &Request) -> Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("http", method = %req.method(), uri = %req.uri().path(), request_id)
}

/// Histogram handles of one route, by method and status.
type RouteHistograms = Vec<(Method, u16, metrics::Histogram)>;

thread_local! {
    /// Histogram handles per (route, method, status), so that a request neither builds nor
    /// hashes a label set. Each worker thread keeps its own map, so a lookup takes no lock and
    /// touches no shared cache line; the handles themselves are shared. Routes are the
    /// matched patterns, so the maps stay small.
    static HISTOGRAMS: RefCell<HashMap<String, RouteHistograms>> = RefCell::new(HashMap::new());
}

fn request_histogram(route: &str, method: &Method, status: u16) -> metrics::Histogram {
    HISTOGRAMS.with(|map| {
        let mut map = map.borrow_mut();
        if !map.contains_key(route) {
            map.insert(route.to_owned(), Vec::new());
        }
        let list = map.get_mut(route).expect("inserted above");
        if let Some((_, _, h)) = list.iter().find(|(m, s, _)| m == method && *s == status) {
            return h.clone();
        }
        let h = metrics::histogram!("http_request_duration_seconds",
            "method" => method.to_string(), "route" => route.to_owned(), "status" => status.to_string());
        list.push((method.clone(), status, h.clone()));
        h
    })
}

/// Records `http_request_duration_seconds{method, route, status}`. The route is the matched
/// pattern (`/api/v1/products/{id}`), never the raw path, so labels stay few.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    request_histogram(route, &method, resp.status().as_u16()).record(started.elapsed().as_secs_f64());
    resp
}

/// Answers 503 when a request takes longer than the deadline; its work is dropped.
pub async fn timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Timeout(limit).into_response(),
    }
}
