//! The `searchCatalogItems` client (Catalog Items API v2022-04-01), EAN batches only.
//!
//! One call looks up to 20 EANs in one marketplace and follows `pagination.nextToken` until the
//! last page: a batch of 20 EANs with several ASINs each spills past one page of 20 items. Each
//! page is one HTTP request against the caller's rate budget, so [`SearchOutcome::requests`]
//! says how many were made. The client does not wait or retry on 429: the resolver owns the
//! rate limiter and decides; it only retries once on 403, with a fresh token, because an access
//! token may expire (or be revoked) between the cache check and Amazon's gateway.
//! Authentication is the LWA token in `x-amz-access-token`; SP-API no longer needs SigV4.

use std::time::Duration;

use pm_domain::Gtin;
use url::Url;

use crate::lwa::{LwaError, TokenProvider};
use crate::model::{CatalogItem, ErrorList, ItemSearchResults};

/// The most identifiers `searchCatalogItems` takes in one call.
pub const MAX_IDENTIFIERS: usize = 20;

/// The largest page Amazon serves; we always ask for it to save requests.
pub const PAGE_SIZE: u32 = 20;

/// Amazon pages through at most 1,000 items: 50 pages of 20. A `nextToken` past that is a
/// server bug, not more data, so the loop stops there.
const MAX_PAGES: u32 = 50;

/// How many times a throttled page after the first is asked again (each after the caller's
/// pace) before the search gives up with [`SpApiError::Throttled`].
const LATER_PAGE_RETRIES: u32 = 3;

/// The datasets matching needs: identifiers to map items back to EANs, summaries for title and
/// brand, sales ranks to choose among several ASINs, images for the operator's review.
const INCLUDED_DATA: &str = "identifiers,summaries,salesRanks,images";

const PATH: &str = "catalog/2022-04-01/items";

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SpApiError {
    /// More than [`MAX_IDENTIFIERS`] codes: refused before any request.
    #[error("at most {MAX_IDENTIFIERS} identifiers per search, got {0}")]
    TooManyIdentifiers(usize),
    /// No access token could be had from LWA.
    #[error(transparent)]
    Token(#[from] LwaError),
    /// 403 twice, the second time with a freshly refreshed token: the app is not authorised for
    /// this seller or operation.
    #[error("sp-api denied access: {0}")]
    Unauthorized(String),
    /// 429: the rate budget is spent. `rate_limit` is the last `x-amzn-RateLimit-Limit` seen in
    /// this search (429s themselves do not carry it).
    #[error("sp-api throttled the request (rate limit {rate_limit:?} per second)")]
    Throttled { rate_limit: Option<f64> },
    /// 400: the request is wrong; the ErrorList's messages.
    #[error("sp-api refused the request as invalid: {0}")]
    BadRequest(String),
    /// 404, 413, 415 or another unexpected 4xx.
    #[error("sp-api answered {status}: {message}")]
    Rejected { status: u16, message: String },
    /// 5xx: Amazon's side failed; worth retrying later.
    #[error("sp-api server error {status}: {message}")]
    Server { status: u16, message: String },
    /// A 200 whose body is not `ItemSearchResults`.
    #[error("sp-api response could not be read: {0}")]
    Malformed(String),
    /// Connection, TLS or timeout.
    #[error("sp-api request failed: {0}")]
    Transport(#[source] reqwest::Error),
}

impl SpApiError {
    /// Whether the same search may succeed later (after backing off); the caller decides when.
    pub fn is_retryable(&self) -> bool {
        match self {
            SpApiError::Throttled { .. } | SpApiError::Server { .. } | SpApiError::Transport(_) => true,
            SpApiError::Token(e) => e.is_retryable(),
            SpApiError::TooManyIdentifiers(_)
            | SpApiError::Unauthorized(_)
            | SpApiError::BadRequest(_)
            | SpApiError::Rejected { .. }
            | SpApiError::Malformed(_) => false,
        }
    }
}

/// Every item of every page of one search.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    pub items: Vec<CatalogItem>,
    /// HTTP requests sent to SP-API (pages, plus the retry after a 403), for the rate budget.
    pub requests: u32,
    /// `x-amzn-RateLimit-Limit` of the last response that carried it: the account's actual rate
    /// for the operation, which may differ from the documented 2/s.
    pub rate_limit: Option<f64>,
}

/// Calls `searchCatalogItems` on one regional host. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CatalogClient {
    http: reqwest::Client,
    items_url: Url,
    tokens: TokenProvider,
}

impl CatalogClient {
    /// `endpoint` is the regional host ([`crate::Marketplace::endpoint`]) or the stand-in's
    /// `base_url()`; a path on it is kept as a prefix. Timeouts are the `http` client's.
    pub fn new(http: reqwest::Client, endpoint: Url, tokens: TokenProvider) -> Self {
        let mut base = endpoint;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let items_url = base
            .join(PATH)
            .expect("relative catalog path joins onto a base url");
        Self {
            http,
            items_url,
            tokens,
        }
    }

    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }

    /// Looks up `eans` (at most 20) in one marketplace, following every page.
    ///
    /// An error on a later page (429 most likely) drops the pages already read: the batch is
    /// retried whole, which keeps the caller's bookkeeping to one outcome per batch. With
    /// `pageSize=20` a batch spans more than one page only when its EANs average more than one
    /// ASIN each.
    pub async fn search_by_identifiers(
        &self,
        marketplace_id: &str,
        eans: &[Gtin],
    ) -> Result<SearchOutcome, SpApiError> {
        self.search_paced(marketplace_id, eans, || async {}).await
    }

    /// [`Self::search_by_identifiers`], awaiting `pace` before every HTTP request (each page,
    /// and the retry after a 403): the caller's rate limiter sees every request, not only the
    /// first of a search.
    pub async fn search_paced<F, Fut>(
        &self,
        marketplace_id: &str,
        eans: &[Gtin],
        mut pace: F,
    ) -> Result<SearchOutcome, SpApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        if eans.len() > MAX_IDENTIFIERS {
            return Err(SpApiError::TooManyIdentifiers(eans.len()));
        }
        let mut outcome = SearchOutcome::default();
        if eans.is_empty() {
            return Ok(outcome);
        }
        // EAN-13 is Amazon's EAN; a GTIN-14 with an indicator digit has no EAN-13 spelling and is
        // sent as is (Amazon's index is GTIN-based and converts).
        let identifiers = eans.iter().map(Gtin::as_str).collect::<Vec<_>>().join(",");
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = self.items_url.clone();
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("identifiers", &identifiers)
                    .append_pair("identifiersType", "EAN")
                    .append_pair("marketplaceIds", marketplace_id)
                    .append_pair("includedData", INCLUDED_DATA)
                    .append_pair("pageSize", &PAGE_SIZE.to_string());
                if let Some(token) = &page_token {
                    q.append_pair("pageToken", token);
                }
            }
            let first = page_token.is_none();
            let page = self.get_page(url, first, &mut outcome, &mut pace).await?;
            outcome.items.extend(page.items);
            page_token = page
                .pagination
                .and_then(|p| p.next_token)
                .filter(|t| !t.is_empty());
            if page_token.is_none() {
                return Ok(outcome);
            }
        }
        tracing::warn!(
            pages = MAX_PAGES,
            "sp-api kept returning a next page token; stopped"
        );
        Ok(outcome)
    }

    /// One page, with one retry on 403 after refreshing the token.
    async fn get_page<F, Fut>(
        &self,
        url: Url,
        first_page: bool,
        outcome: &mut SearchOutcome,
        pace: &mut F,
    ) -> Result<ItemSearchResults, SpApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut refreshed = false;
        let mut throttled = 0;
        loop {
            let token = self.tokens.access_token().await?;
            pace().await;
            outcome.requests += 1;
            let response = self
                .http
                .get(url.clone())
                .header("x-amz-access-token", &token)
                .header(
                    "x-amz-date",
                    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string(),
                )
                .header(
                    "user-agent",
                    concat!("pm-amazon/", env!("CARGO_PKG_VERSION"), " (Language=Rust)"),
                )
                .header("accept", "application/json")
                .send()
                .await
                .map_err(SpApiError::Transport)?;
            let status = response.status().as_u16();
            if let Some(limit) = rate_limit_header(&response) {
                outcome.rate_limit = Some(limit);
            }
            let request_id = response
                .headers()
                .get("x-amzn-requestid")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = response.bytes().await.map_err(SpApiError::Transport)?;
            if status == 200 {
                return serde_json::from_slice(&body).map_err(|e| SpApiError::Malformed(e.to_string()));
            }
            let message = error_message(&body);
            tracing::debug!(status, %request_id, %message, "sp-api search refused");
            match status {
                403 if !refreshed => {
                    // Expired or revoked token: drop it (unless another request already did)
                    // and try once more with a fresh one.
                    self.tokens.invalidate_token(&token);
                    refreshed = true;
                }
                403 => return Err(SpApiError::Unauthorized(message)),
                // A later page throttled: the earlier pages would be lost with the whole
                // search, so this page is asked again after the caller's pace (a few times).
                429 if !first_page && throttled < LATER_PAGE_RETRIES => throttled += 1,
                429 => {
                    return Err(SpApiError::Throttled {
                        rate_limit: outcome.rate_limit,
                    })
                }
                400 => return Err(SpApiError::BadRequest(message)),
                500..=599 => return Err(SpApiError::Server { status, message }),
                _ => return Err(SpApiError::Rejected { status, message }),
            }
        }
    }
}

/// `x-amzn-RateLimit-Limit` as a number (`"2.0"`, `"0.5"`).
fn rate_limit_header(response: &reqwest::Response) -> Option<f64> {
    response
        .headers()
        .get("x-amzn-ratelimit-limit")?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
}

/// The ErrorList's messages, or the start of a body that is not one.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorList>(body) {
        Ok(list) if !list.errors.is_empty() => list.summary(),
        _ => String::from_utf8_lossy(body).chars().take(300).collect(),
    }
}

/// A suggested back-off after [`SpApiError::Throttled`]: one token's refill time at the
/// advertised rate (2/s when unknown).
pub fn throttle_backoff(rate_limit: Option<f64>) -> Duration {
    let rate = rate_limit.filter(|r| *r > 0.0).unwrap_or(2.0);
    Duration::from_secs_f64((1.0 / rate).min(60.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_path_prefix() {
        let tokens = TokenProvider::new(
            reqwest::Client::new(),
            crate::LwaCredentials {
                client_id: "a".into(),
                client_secret: "b".into(),
                refresh_token: "c".into(),
            },
        );
        let c = CatalogClient::new(
            reqwest::Client::new(),
            Url::parse("https://sellingpartnerapi-eu.amazon.com").unwrap(),
            tokens.clone(),
        );
        assert_eq!(
            c.items_url.as_str(),
            "https://sellingpartnerapi-eu.amazon.com/catalog/2022-04-01/items"
        );
        let c = CatalogClient::new(
            reqwest::Client::new(),
            Url::parse("http://127.0.0.1:1/prefix").unwrap(),
            tokens,
        );
        assert_eq!(
            c.items_url.as_str(),
            "http://127.0.0.1:1/prefix/catalog/2022-04-01/items"
        );
    }

    #[test]
    fn retryable_kinds() {
        assert!(SpApiError::Throttled { rate_limit: None }.is_retryable());
        assert!(SpApiError::Server {
            status: 503,
            message: String::new()
        }
        .is_retryable());
        assert!(!SpApiError::BadRequest(String::new()).is_retryable());
        assert!(!SpApiError::Unauthorized(String::new()).is_retryable());
        assert!(!SpApiError::TooManyIdentifiers(21).is_retryable());
    }

    #[test]
    fn backoff_follows_the_rate() {
        assert_eq!(throttle_backoff(Some(2.0)), Duration::from_millis(500));
        assert_eq!(throttle_backoff(None), Duration::from_millis(500));
        assert_eq!(throttle_backoff(Some(0.5)), Duration::from_secs(2));
    }
}
