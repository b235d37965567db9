//! Login with Amazon (LWA): the refresh-token grant that yields SP-API access tokens.
//!
//! An access token lives an hour (`expires_in`), and every SP-API call carries one. The
//! [`TokenProvider`] keeps the current token and renews it a margin before it expires, so a batch
//! never sends a token that dies in flight; when SP-API still says 403 (revoked, clock skew,
//! stand-in `expire_tokens`), the caller [`TokenProvider::invalidate_token`]s it and asks again.
//! Refreshes are single-flight: callers that find the cache stale queue on one async lock, the
//! first refreshes, the rest find the new token, so a burst of N requests costs one LWA call.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

/// Amazon's LWA token endpoint.
pub const DEFAULT_LWA_ENDPOINT: &str = "https://api.amazon.com/auth/o2/token";

/// How long before `expires_in` a token is renewed: covers the request's own latency and
/// modest clock skew.
pub const DEFAULT_RENEW_MARGIN: Duration = Duration::from_secs(60);

/// The app's LWA client and the seller's refresh token. `Debug` masks the secrets so that the
/// struct can sit in logged settings.
#[derive(Clone, PartialEq, Eq)]
pub struct LwaCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

impl fmt::Debug for LwaCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LwaCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("refresh_token", &"***")
            .finish()
    }
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum LwaError {
    /// LWA answered with an OAuth error (`invalid_grant`: the refresh token is wrong or revoked;
    /// `invalid_client`: client id or secret is wrong). Not retryable unless LWA says it is busy.
    #[error(
        "lwa refused the token request with {status} {error}: {description}{}",
        hint(error)
    )]
    Rejected {
        status: u16,
        error: String,
        description: String,
    },
    /// LWA answered 2xx but not with a token we can read.
    #[error("lwa response could not be read: {0}")]
    Malformed(String),
    /// Connection, TLS or timeout: the request may not have reached LWA.
    #[error("lwa request failed: {0}")]
    Transport(#[source] reqwest::Error),
}

impl LwaError {
    /// Whether asking again later may succeed (LWA busy or unreachable); wrong credentials never
    /// will.
    pub fn is_retryable(&self) -> bool {
        match self {
            LwaError::Rejected { status, error, .. } => {
                *status >= 500
                    || *status == 429
                    || error == "server_error"
                    || error == "temporarily_unavailable"
            }
            LwaError::Malformed(_) => false,
            LwaError::Transport(_) => true,
        }
    }
}

/// What to check for the OAuth errors an operator can fix.
fn hint(error: &str) -> &'static str {
    match error {
        "invalid_grant" => " (the refresh token is wrong, revoked, or belongs to another app)",
        "invalid_client" | "unauthorized_client" => " (the lwa client id or secret is wrong)",
        _ => "",
    }
}

/// The OAuth error body LWA sends with 4xx.
#[derive(Debug, Deserialize)]
struct LwaErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// A cached access token and when to stop using it.
#[derive(Clone)]
struct Cached {
    token: String,
    renew_at: Instant,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    credentials: LwaCredentials,
    renew_margin: Duration,
    /// The current token; read without waiting by every request.
    cached: parking_lot::Mutex<Option<Cached>>,
    /// Held for the whole LWA call: bounds refreshes to one in flight (single-flight).
    refresh: tokio::sync::Mutex<()>,
    /// LWA calls made (successful or not), for tests and metrics.
    refreshes: std::sync::atomic::AtomicU64,
}

/// Hands out LWA access tokens, refreshing them as needed. Cheap to clone; clones share the
/// cache.
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider for Amazon's LWA endpoint.
    pub fn new(http: reqwest::Client, credentials: LwaCredentials) -> Self {
        let endpoint = Url::parse(DEFAULT_LWA_ENDPOINT).expect("lwa endpoint constant is a valid url");
        Self::with_endpoint(http, endpoint, credentials)
    }

    /// A provider for another token endpoint (the stand-in's `lwa_url()`).
    pub fn with_endpoint(http: reqwest::Client, endpoint: Url, credentials: LwaCredentials) -> Self {
        Self::with_options(http, endpoint, credentials, DEFAULT_RENEW_MARGIN)
    }

    /// As [`Self::with_endpoint`] with a renewal margin other than [`DEFAULT_RENEW_MARGIN`].
    pub fn with_options(
        http: reqwest::Client,
        endpoint: Url,
        credentials: LwaCredentials,
        renew_margin: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                endpoint,
                credentials,
                renew_margin,
                cached: parking_lot::Mutex::new(None),
                refresh: tokio::sync::Mutex::new(()),
                refreshes: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// A valid access token: the cached one, or a fresh one from LWA.
    pub async fn access_token(&self) -> Result<String, LwaError> {
        if let Some(token) = self.fresh_cached() {
            return Ok(token);
        }
        let _guard = self.inner.refresh.lock().await;
        // Another caller may have refreshed while this one waited for the lock.
        if let Some(token) = self.fresh_cached() {
            return Ok(token);
        }
        let fetched = self.fetch().await?;
        let token = fetched.token.clone();
        *self.inner.cached.lock() = Some(fetched);
        Ok(token)
    }

    /// Drops the cached token whatever it is: the next call goes to LWA.
    pub fn invalidate(&self) {
        *self.inner.cached.lock() = None;
    }

    /// Drops the cached token only if it is still `token`. Used after a 403: when several
    /// requests fail with the same token at once, the first refresh is not thrown away by the
    /// others.
    pub fn invalidate_token(&self, token: &str) {
        let mut cached = self.inner.cached.lock();
        if cached.as_ref().is_some_and(|c| c.token == token) {
            *cached = None;
        }
    }

    /// LWA calls made so far by this provider and its clones.
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn fresh_cached(&self) -> Option<String> {
        let cached = self.inner.cached.lock();
        cached
            .as_ref()
            .filter(|c| Instant::now() < c.renew_at)
            .map(|c| c.token.clone())
    }

    async fn fetch(&self) -> Result<Cached, LwaError> {
        self.inner
            .refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let creds = &self.inner.credentials;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", creds.refresh_token.as_str()),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.as_str()),
        ];
        let started = Instant::now();
        let response = self
            .inner
            .http
            .post(self.inner.endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(LwaError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(LwaError::Transport)?;
        if !status.is_success() {
            let parsed: Option<LwaErrorBody> = serde_json::from_slice(&body).ok();
            let (error, description) = match parsed {
                Some(b) => (
                    b.error.unwrap_or_else(|| "unknown_error".into()),
                    b.error_description.unwrap_or_default(),
                ),
                None => (
                    "unknown_error".into(),
                    String::from_utf8_lossy(&body).chars().take(200).collect(),
                ),
            };
            tracing::warn!(status = status.as_u16(), %error, "lwa token refresh refused");
            return Err(LwaError::Rejected {
                status: status.as_u16(),
                error,
                description,
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| LwaError::Malformed(e.to_string()))?;
        if parsed.access_token.is_empty() {
            return Err(LwaError::Malformed("empty access_token".into()));
        }
        let lifetime = Duration::from_secs(parsed.expires_in);
        // Renew `renew_margin` early, but never sooner than half the lifetime, so that a short
        // lived token (a stand-in configured with a few seconds) is still used at least once.
        let margin = self.inner.renew_margin.min(lifetime / 2);
        tracing::debug!(expires_in = parsed.expires_in, "lwa access token refreshed");
        Ok(Cached {
            token: parsed.access_token,
            renew_at: started + lifetime - margin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_secrets() {
        let creds = LwaCredentials {
            client_id: "amzn1.application-oa2-client.abc".into(),
            client_secret: "very-secret".into(),
            refresh_token: "Atzr|refresh".into(),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("amzn1.application-oa2-client.abc"));
        assert!(!shown.contains("very-secret"));
        assert!(!shown.contains("Atzr|refresh"));
        let provider = TokenProvider::new(reqwest::Client::new(), creds);
        let shown = format!("{provider:?}");
        assert!(!shown.contains("very-secret"));
    }

    #[test]
    fn retryable_only_when_lwa_is_busy() {
        let rejected = |status: u16, error: &str| LwaError::Rejected {
            status,
            error: error.into(),
            description: String::new(),
        };
        assert!(!rejected(400, "invalid_grant").is_retryable());
        assert!(!rejected(401, "invalid_client").is_retryable());
        assert!(rejected(503, "temporarily_unavailable").is_retryable());
        assert!(rejected(500, "server_error").is_retryable());
    }
}
