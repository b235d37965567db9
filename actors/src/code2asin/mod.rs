//! Code2ASIN: Amazon ASINs for the catalog's EANs.
//!
//! - [`resolver`]: [`resolver::Resolver`], one per seller account and marketplace
//!   (`code2asin.resolver.<account>.<marketplace>`, dynamic children), which paces requests
//!   with a token bucket, batches EANs by 20 and answers from the cache when it can.
//! - [`job`]: the `code2asin.resolve` job kind on the code2asin queue: a job's EANs (given, or a
//!   catalog selection) through its resolver, results recorded per EAN, confident matches
//!   written to the products, pause/resume/cancel, statistics.
//!
//! Accounts come from `[amazon]` (key `settings`) or from the core database (key: the
//! account's id), their secrets decrypted here only ([`Accounts`]).

pub mod job;
pub mod resolver;

use std::sync::Arc;
use std::time::Duration;

use pm_amazon::{CatalogClient, LwaCredentials, Marketplace, TokenProvider};
use pm_config::AmazonSettings;
use pm_storage::core::Core;
use pm_storage::crypto::SecretCipher;
use url::Url;
use uuid::Uuid;

/// The key of the account of the settings.
pub const SETTINGS_ACCOUNT: &str = "settings";

/// An account ready to use.
pub struct Account {
    /// [`SETTINGS_ACCOUNT`] or the id.
    pub key: String,
    pub credentials: LwaCredentials,
    pub marketplace: Marketplace,
    pub endpoint: Url,
    pub lwa_endpoint: Url,
    pub rate_per_sec: f64,
    pub burst: u32,
}

/// Finds accounts and builds their clients.
pub struct Accounts {
    pub settings: AmazonSettings,
    pub core: Core,
    pub cipher: SecretCipher,
    pub http: reqwest::Client,
}

/// Why an account cannot be used: the job fails with this (fatal).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no amazon account: set [amazon] client_id, client_secret and refresh_token, or add one at /api/v1/code2asin/accounts")]
    NoAccount,
    #[error("amazon account {0} not found")]
    NotFound(Uuid),
    #[error("amazon account {key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("amazon accounts unreadable: {0}")]
    Store(#[from] pm_storage::StoreError),
}

impl AccountError {
    /// Whether trying again later may work (the database was unreachable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, AccountError::Store(e) if e.is_unavailable())
    }
}

impl Accounts {
    /// Whether the settings hold a complete account.
    pub fn settings_account(&self) -> bool {
        let s = &self.settings;
        s.client_id.is_some() && s.client_secret.is_some() && s.refresh_token.is_some()
    }

    /// The account `id`, else the settings' account, else the stored default; with
    /// `marketplace` overriding the account's own.
    pub async fn resolve(
        &self,
        id: Option<Uuid>,
        marketplace: Option<&str>,
    ) -> Result<Account, AccountError> {
        let invalid = |key: &str, reason: String| AccountError::Invalid {
            key: key.to_owned(),
            reason,
        };
        let (key, creds, market, endpoint, lwa, rate, burst) = match id {
            None if self.settings_account() => {
                let s = &self.settings;
                (
                    SETTINGS_ACCOUNT.to_owned(),
                    LwaCredentials {
                        client_id: s.client_id.clone().unwrap_or_default(),
                        client_secret: s
                            .client_secret
                            .as_ref()
                            .map(|x| x.expose().to_owned())
                            .unwrap_or_default(),
                        refresh_token: s
                            .refresh_token
                            .as_ref()
                            .map(|x| x.expose().to_owned())
                            .unwrap_or_default(),
                    },
                    s.marketplace.clone(),
                    s.endpoint.clone(),
                    s.lwa_endpoint.clone(),
                    s.rate_per_sec,
                    s.burst,
                )
            }
            _ => {
                let stored = match id {
                    Some(id) => self
                        .core
                        .amazon_account(id)
                        .await?
                        .ok_or(AccountError::NotFound(id))?,
                    None => self
                        .core
                        .default_amazon_account()
                        .await?
                        .ok_or(AccountError::NoAccount)?,
                };
                let key = stored.account.id.to_string();
                let secret = self
                    .cipher
                    .decrypt(&stored.client_secret_enc)
                    .map_err(|e| invalid(&key, e.to_string()))?;
                let refresh = self
                    .cipher
                    .decrypt(&stored.refresh_token_enc)
                    .map_err(|e| invalid(&key, e.to_string()))?;
                let a = stored.account;
                (
                    key,
                    LwaCredentials {
                        client_id: a.client_id,
                        client_secret: secret,
                        refresh_token: refresh,
                    },
                    a.marketplace_id,
                    a.endpoint,
                    a.lwa_endpoint
                        .unwrap_or_else(|| self.settings.lwa_endpoint.clone()),
                    a.rate_per_sec.unwrap_or(self.settings.rate_per_sec),
                    a.burst.map_or(self.settings.burst, |b| b.max(1) as u32),
                )
            }
        };
        let marketplace =
            Marketplace::parse(marketplace.unwrap_or(&market)).map_err(|e| invalid(&key, e.to_string()))?;
        let endpoint = match endpoint {
            Some(e) => Url::parse(&e).map_err(|e| invalid(&key, format!("endpoint: {e}")))?,
            None => marketplace.endpoint(),
        };
        let lwa_endpoint = Url::parse(&lwa).map_err(|e| invalid(&key, format!("lwa_endpoint: {e}")))?;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(invalid(&key, format!("rate_per_sec must be above 0, got {rate}")));
        }
        Ok(Account {
            key,
            credentials: creds,
            marketplace,
            endpoint,
            lwa_endpoint,
            rate_per_sec: rate,
            burst: burst.max(1),
        })
    }

    /// A client for `account`.
    pub fn client(&self, account: &Account) -> CatalogClient {
        let tokens = TokenProvider::with_endpoint(
            self.http.clone(),
            account.lwa_endpoint.clone(),
            account.credentials.clone(),
        );
        CatalogClient::new(self.http.clone(), account.endpoint.clone(), tokens)
    }
}

/// The HTTP client of Amazon calls.
pub fn http_client(settings: &AmazonSettings) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!(
            "products-manager/",
            env!("CARGO_PKG_VERSION"),
            " (Language=Rust)"
        ))
        .timeout(Duration::from_secs(settings.request_timeout_secs.max(1)))
        .connect_timeout(Duration::from_secs(settings.request_timeout_secs.clamp(1, 10)))
        .build()
        .unwrap_or_default()
}

/// Everything the job kind needs.
pub struct Code2asinDeps {
    pub accounts: Accounts,
    pub resolvers: resolver::Resolvers,
    pub resolver_deps: Arc<resolver::ResolverDeps>,
    pub store: pm_storage::code2asin::Code2asin,
    pub catalog: pm_supervisors::Mailbox<crate::store::catalog::CatalogStore>,
    pub auto_apply_threshold: f64,
    pub max_eans: usize,
}
