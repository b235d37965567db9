//! An in-process stand-in for SP-API's `searchCatalogItems` and LWA's token endpoint, for tests,
//! demos and load scripts: nothing leaves the machine and every answer is reproducible.
//!
//! What it does as Amazon does (`docs/external-apis.md` §1.8):
//! - `POST /auth/o2/token`: the refresh-token grant, form or JSON body; wrong client → 401
//!   `invalid_client`, wrong refresh token → 400 `invalid_grant`; tokens live `token_ttl_secs`.
//! - `GET /catalog/2022-04-01/items`: in Amazon's gateway order: the `x-amz-access-token` must
//!   be one it issued and unexpired (else 403 `Unauthorized`); then the token bucket (else 429
//!   `QuotaExceeded`); then the parameters (the rules in `standin/search.rs`, else 400 `InvalidInput`).
//!   200 and 400 carry `x-amzn-RateLimit-Limit`; every response carries `x-amzn-RequestId`.
//! - The catalog is a function of each GTIN ([`catalog_for`], rule in [`catalog`]).
//!
//! Throttling is one bucket per account-application pair, as Amazon's usage plans are; the
//! stand-in knows one pair, so it is one bucket shared by every token it issues (a refreshed
//! token does not get a fresh burst). Handling is O(1) per request: no sleeps, no scans.
//!
//! For scripts: `GET /_standin/stats` (JSON of [`StandInStats`]) and
//! `POST /_standin/expire-tokens`.

pub mod catalog;
mod search;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

pub use catalog::{catalog_for, shape_for, Shape, StandInProduct};

use crate::lwa::LwaCredentials;

/// The per-request log keeps this many entries, then only counts: bounds a long demo's memory.
const MAX_LOGGED_REQUESTS: usize = 100_000;

/// How the stand-in behaves.
#[derive(Debug, Clone)]
pub struct StandInConfig {
    /// Tokens added to the bucket per second (Amazon: 2).
    pub rate_per_sec: f64,
    /// Bucket size (Amazon: 2).
    pub burst: u32,
    /// Lifetime of issued access tokens (Amazon: 3600).
    pub token_ttl_secs: u64,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

impl Default for StandInConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 2.0,
            burst: 2,
            token_ttl_secs: 3600,
            client_id: "amzn1.application-oa2-client.standin".into(),
            client_secret: "standin-secret".into(),
            refresh_token: "Atzr|standin-refresh-token".into(),
        }
    }
}

impl StandInConfig {
    /// The credentials the stand-in accepts.
    pub fn credentials(&self) -> LwaCredentials {
        LwaCredentials {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: self.refresh_token.clone(),
        }
    }
}

/// One catalog request: when (ms since start) and the status answered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RequestRecord {
    pub at_ms: f64,
    pub status: u16,
}

/// Counters since start. Catalog requests only, except the `lwa_*`/`tokens_issued` ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StandInStats {
    pub requests: u64,
    pub ok: u64,
    pub throttled: u64,
    pub bad_requests: u64,
    pub unauthorized: u64,
    pub lwa_requests: u64,
    pub lwa_rejected: u64,
    pub tokens_issued: u64,
    pub first_request_ms: Option<f64>,
    pub last_request_ms: Option<f64>,
    /// The first 100,000 catalog requests.
    pub log: Vec<RequestRecord>,
}

/// Amazon's token bucket: `burst` tokens at most, `rate` added per second.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: u32,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst,
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(f64::from(self.burst));
        self.last = now;
    }

    fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Shared {
    config: StandInConfig,
    started: Instant,
    /// Issued access tokens and when each expires.
    tokens: Mutex<HashMap<String, Instant>>,
    bucket: Mutex<Bucket>,
    stats: Mutex<StandInStats>,
}

impl Shared {
    fn ms_since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64() * 1000.0
    }

    fn record(&self, at: Instant, status: StatusCode) {
        let at_ms = self.ms_since_start(at);
        let mut s = self.stats.lock();
        s.requests += 1;
        match status.as_u16() {
            200 => s.ok += 1,
            400 => s.bad_requests += 1,
            403 => s.unauthorized += 1,
            429 => s.throttled += 1,
            _ => {}
        }
        s.first_request_ms.get_or_insert(at_ms);
        s.last_request_ms = Some(at_ms);
        if s.log.len() < MAX_LOGGED_REQUESTS {
            s.log.push(RequestRecord {
                at_ms,
                status: status.as_u16(),
            });
        }
    }
}

/// Starts stand-ins.
pub struct StandIn;

impl StandIn {
    /// Serves on `127.0.0.1` at a free port, on the current tokio runtime.
    pub async fn start(config: StandInConfig) -> std::io::Result<StandInHandle> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Serves on `addr` (the dev binary's `--addr`).
    pub async fn start_on(addr: SocketAddr, config: StandInConfig) -> std::io::Result<StandInHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            bucket: Mutex::new(Bucket::new(config.rate_per_sec, config.burst)),
            config,
            started: Instant::now(),
            tokens: Mutex::new(HashMap::new()),
            stats: Mutex::new(StandInStats::default()),
        });
        let router = Router::new()
            .route("/auth/o2/token", post(token))
            .route("/catalog/2022-04-01/items", get(search_items))
            .route("/_standin/stats", get(stats))
            .route("/_standin/expire-tokens", post(expire))
            .fallback(not_found)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "sp-api stand-in stopped with an error");
            }
        });
        tracing::debug!(%addr, "sp-api stand-in listening");
        Ok(StandInHandle {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running stand-in; stops when dropped or on [`StandInHandle::shutdown`].
pub struct StandInHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl StandInHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SP-API host to give [`crate::CatalogClient::new`].
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("socket address makes a valid url")
    }

    /// The LWA endpoint to give [`crate::TokenProvider::with_endpoint`].
    pub fn lwa_url(&self) -> Url {
        self.base_url()
            .join("auth/o2/token")
            .expect("relative path joins")
    }

    /// The credentials it accepts.
    pub fn credentials(&self) -> LwaCredentials {
        self.shared.config.credentials()
    }

    /// The instant that the `*_ms` of [`StandInStats`] count from.
    pub fn started_at(&self) -> Instant {
        self.shared.started
    }

    pub fn stats(&self) -> StandInStats {
        self.shared.stats.lock().clone()
    }

    /// Expires every token issued so far: the next request with one gets 403, as when a token
    /// dies in the middle of a long job.
    pub fn expire_tokens(&self) {
        expire_all(&self.shared);
    }

    /// Changes the bucket: the tokens already in it are kept up to the new burst.
    pub fn set_rate(&self, rate_per_sec: f64, burst: u32) {
        let mut bucket = self.shared.bucket.lock();
        bucket.refill(Instant::now());
        bucket.rate = rate_per_sec;
        bucket.burst = burst;
        bucket.tokens = bucket.tokens.min(f64::from(burst));
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for StandInHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn expire_all(shared: &Shared) {
    let now = Instant::now();
    for expires in shared.tokens.lock().values_mut() {
        *expires = now;
    }
}

/// A JSON response with SP-API's headers.
fn sp_response(status: StatusCode, body: Value, rate: Option<f64>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-RequestId", id);
    }
    if let Some(rate) = rate {
        // Debug formatting keeps the decimal point: "2.0", "0.5", as Amazon sends.
        if let Ok(v) = HeaderValue::from_str(&format!("{rate:?}")) {
            headers.insert("x-amzn-RateLimit-Limit", v);
        }
    }
    response
}

fn error_list(code: &str, message: &str, details: &str) -> Value {
    json!({"errors": [{"code": code, "message": message, "details": details}]})
}

async fn search_items(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = Instant::now();
    let (status, response) = answer_search(&shared, &headers, query.as_deref().unwrap_or(""), now);
    shared.record(now, status);
    response
}

fn answer_search(shared: &Shared, headers: &HeaderMap, query: &str, now: Instant) -> (StatusCode, Response) {
    const DENIED: &str = "Access to requested resource is denied.";
    let token = headers.get("x-amz-access-token").and_then(|v| v.to_str().ok());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        let body = error_list("Unauthorized", DENIED, "");
        return (
            StatusCode::FORBIDDEN,
            sp_response(StatusCode::FORBIDDEN, body, None),
        );
    };
    let valid = shared
        .tokens
        .lock()
        .get(token)
        .is_some_and(|expires| now < *expires);
    if !valid {
        let body = error_list(
            "Unauthorized",
            DENIED,
            "The access token you provided is revoked, malformed or invalid.",
        );
        return (
            StatusCode::FORBIDDEN,
            sp_response(StatusCode::FORBIDDEN, body, None),
        );
    }
    let (allowed, rate) = {
        let mut bucket = shared.bucket.lock();
        (bucket.try_take(now), bucket.rate)
    };
    if !allowed {
        let body = error_list(
            "QuotaExceeded",
            "You exceeded your quota for the requested resource.",
            "",
        );
        return (
            StatusCode::TOO_MANY_REQUESTS,
            sp_response(StatusCode::TOO_MANY_REQUESTS, body, None),
        );
    }
    match search::search(query) {
        Ok(body) => (StatusCode::OK, sp_response(StatusCode::OK, body, Some(rate))),
        Err(search::Invalid(message)) => {
            let body = error_list("InvalidInput", &message, "");
            (
                StatusCode::BAD_REQUEST,
                sp_response(StatusCode::BAD_REQUEST, body, Some(rate)),
            )
        }
    }
}

/// LWA's OAuth error answer.
fn lwa_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    no_store(response.headers_mut());
    response
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let response = answer_token(&shared, &headers, &body);
    let mut stats = shared.stats.lock();
    stats.lwa_requests += 1;
    if response.status().is_success() {
        stats.tokens_issued += 1;
    } else {
        stats.lwa_rejected += 1;
    }
    response
}

fn answer_token(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    // Amazon's Java client posts JSON, the docs and the Python helper a form: accept both.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let fields: HashMap<String, String> = if is_json {
        match serde_json::from_slice::<HashMap<String, Value>>(body) {
            Ok(map) => map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                .collect(),
            Err(_) => {
                return lwa_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Malformed request body",
                )
            }
        }
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    };
    let field = |name: &str| fields.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let config = &shared.config;
    let Some(grant_type) = field("grant_type") else {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing a required parameter : grant_type",
        );
    };
    if grant_type != "refresh_token" {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server",
        );
    }
    let (Some(client_id), Some(client_secret), Some(refresh_token)) =
        (field("client_id"), field("client_secret"), field("refresh_token"))
    else {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing a required parameter : client_id, client_secret or refresh_token",
        );
    };
    if client_id != config.client_id || client_secret != config.client_secret {
        return lwa_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    if refresh_token != config.refresh_token {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        );
    }
    let access_token = format!(
        "Atza|{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let expires = Instant::now() + Duration::from_secs(config.token_ttl_secs);
    shared.tokens.lock().insert(access_token.clone(), expires);
    let mut response = axum::Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": config.token_ttl_secs,
        "refresh_token": config.refresh_token,
    }))
    .into_response();
    no_store(response.headers_mut());
    response
}

async fn stats(State(shared): State<Arc<Shared>>) -> axum::Json<StandInStats> {
    axum::Json(shared.stats.lock().clone())
}

async fn expire(State(shared): State<Arc<Shared>>) -> StatusCode {
    expire_all(&shared);
    StatusCode::NO_CONTENT
}

async fn not_found() -> Response {
    sp_response(
        StatusCode::NOT_FOUND,
        error_list("NotFound", "Resource not found.", ""),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_rate_up_to_burst() {
        let start = Instant::now();
        let mut b = Bucket::new(2.0, 2);
        b.last = start;
        assert!(b.try_take(start));
        assert!(b.try_take(start));
        assert!(!b.try_take(start));
        assert!(b.try_take(start + Duration::from_millis(500)));
        assert!(!b.try_take(start + Duration::from_millis(600)));
        // A long pause refills to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        assert!(b.try_take(later));
        assert!(b.try_take(later));
        assert!(!b.try_take(later));
    }
}
