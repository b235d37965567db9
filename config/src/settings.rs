//! The settings tree. Field documentation lives in `config/default.toml`, which is also the
//! built-in defaults layer: a field missing there fails the `defaults_are_complete` test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Database, PerDatabase, Secret};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub database: DatabaseSettings,
    pub cache: CacheSettings,
    pub object_store: ObjectStoreSettings,
    pub catalog: CatalogSettings,
    pub imports: ImportSettings,
    pub amazon: AmazonSettings,
    pub code2asin: Code2asinSettings,
    pub media: MediaSettings,
    pub actors: ActorSettings,
    pub jobs: JobSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub escalation_linger_ms: u64,
    pub ws_buffer_events: usize,
    pub ws_ping_secs: u64,
    pub ws_auth_timeout_secs: u64,
    pub ws_max_message_bytes: usize,
    pub trusted_proxies: Vec<String>,
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: Option<Secret>,
    pub name_prefix: String,
    pub pool_timeout_secs: u64,
    pub pool_recycle_secs: u64,
    pub pool_pre_ping: bool,
    pub max_overflow: u32,
    pub idle_timeout_secs: u64,
    pub sqlite_busy_timeout_ms: u64,
    pub pools: PerDatabase<u32>,
    pub urls: PerDatabase<Option<Secret>>,
}

/// Where one database lives, resolved from [`DatabaseSettings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database: the URL of the database itself, and the database name to create
    /// through the server's maintenance database when it is missing.
    Postgres { url: Secret, create: Option<String> },
}

impl Settings {
    /// Where `db` lives: its own URL if set, else `<database.url>/<prefix><db>`, else SQLite.
    pub fn database_location(&self, db: Database) -> DatabaseLocation {
        let d = &self.database;
        if let Some(url) = d.urls.get(db) {
            return DatabaseLocation::Postgres {
                url: url.clone(),
                create: None,
            };
        }
        match &d.url {
            Some(server) => {
                let name = format!("{}{}", d.name_prefix, db.as_str());
                let mut url = server.expose().to_owned();
                if let Ok(mut u) = url::Url::parse(&url) {
                    u.set_path(&name);
                    url = u.to_string();
                }
                DatabaseLocation::Postgres {
                    url: Secret::new(url),
                    create: Some(name),
                }
            }
            None => DatabaseLocation::Sqlite(self.storage.data_dir.join(format!("{}.db", db.as_str()))),
        }
    }
}

impl DatabaseSettings {
    pub fn pool_timeout(&self) -> Duration {
        Duration::from_secs(self.pool_timeout_secs)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub redis_url: Option<Secret>,
    /// PEM file of the CA that signs the Redis server's certificate (`rediss://` only).
    pub redis_ca_file: Option<std::path::PathBuf>,
    pub l1_ttl_secs: u64,
    pub l1_max_bytes: u64,
    pub redis_timeout_ms: u64,
    pub invalidation_hold_ms: u64,
    pub key_prefix: String,
    pub invalidation_channel: String,
    pub ttl: CacheTtlSettings,
}

impl CacheSettings {
    pub fn l1_ttl(&self) -> Duration {
        Duration::from_secs(self.l1_ttl_secs)
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn invalidation_hold(&self) -> Duration {
        Duration::from_millis(self.invalidation_hold_ms)
    }
}

/// L2 (Redis) lifetime per cached data type, in seconds (the seeds' `DEFAULT_TTLS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheTtlSettings {
    pub categories: u64,
    pub taxonomies: u64,
    pub brands: u64,
    pub products: u64,
    pub suppliers: u64,
    pub enrichment_stats: u64,
    pub import_jobs: u64,
    pub export_jobs: u64,
    pub code2asin_mappings: u64,
    pub amazon_product_data: u64,
    pub search_results: u64,
    pub api_rate_limits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectStoreBackend {
    Fs,
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreSettings {
    pub backend: ObjectStoreBackend,
    pub link_secret: Option<Secret>,
    pub link_ttl_secs: u64,
    pub max_object_bytes: u64,
    pub buckets: BucketSettings,
    pub s3: S3Settings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    pub product_images: String,
    pub imports: String,
    pub exports: String,
    pub code2asin_cache: String,
    pub analytics_reports: String,
}

impl BucketSettings {
    pub fn all(&self) -> [&str; 5] {
        [
            &self.product_images,
            &self.imports,
            &self.exports,
            &self.code2asin_cache,
            &self.analytics_reports,
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub create_buckets: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSettings {
    pub activity_queue_capacity: usize,
    pub store_mailbox_capacity: usize,
    pub send_timeout_ms: u64,
    pub stuck_after_secs: u64,
    pub max_restarts: u32,
    pub restart_window_secs: u64,
    /// Queries at once of the catalog's bulk lane, out of the catalog pool.
    pub bulk_concurrency: usize,
    pub bulk_mailbox_capacity: usize,
    /// Arbiter threads shared by all actors (0: one per core).
    pub arbiters: usize,
    /// CPU-bound tasks at once across all actors (0: one per core).
    pub blocking_threads: usize,
}

/// The durable job queues and their worker pools (`[jobs]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub retry_base_secs: u64,
    pub retry_factor: u32,
    pub retry_max_delay_secs: u64,
    pub max_attempts: u32,
    pub debug_kinds: bool,
    pub workers: JobWorkers,
}

/// Workers per queue: jobs of one queue that run at once on this instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobWorkers {
    pub imports: usize,
    pub exports: usize,
    pub code2asin: usize,
    /// Thumbnail workers; unset: one per core (decoding and resizing are CPU work, and each
    /// worker runs one image at a time on the blocking pool). See [`JobWorkers::media_count`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<usize>,
    pub catalog: usize,
}

impl JobWorkers {
    /// The media queue's workers: the setting, or one per core.
    pub fn media_count(&self) -> usize {
        self.media.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(std::num::NonZeroUsize::get)
                .unwrap_or(2)
        })
    }
}

impl JobSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(1))
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }
}

impl ActorSettings {
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub revocation_check_secs: u64,
    pub jwt_secret: Option<Secret>,
    pub issuer: String,
    pub access_token_ttl_secs: u64,
    pub clock_leeway_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub bootstrap_admin_password: Option<Secret>,
    pub login_attempts_per_user_per_minute: u32,
    pub login_attempts_per_ip_per_minute: u32,
    pub metrics_token: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    /// The largest supplier file an upload may bring.
    pub max_upload_bytes: usize,
    /// Import sessions alive at most (one per supplier with an import running).
    pub max_sessions: usize,
    /// A session with no import for this long stops (and leaves `/admin/actors`).
    pub session_idle_secs: u64,
    /// Imports from a URL are accepted.
    pub url_sources: bool,
    /// The whole fetch of a URL (connect, answer, body) at most.
    pub fetch_timeout_secs: u64,
    /// URLs naming loopback, private or link-local addresses are accepted.
    pub fetch_private_addresses: bool,
    /// An import's batches written at once at most; unset: two on PostgreSQL, one on SQLite.
    #[serde(default)]
    pub batches_in_flight: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    pub trash_retention_days: u32,
    pub trash_purge_interval_secs: u64,
    /// The currency of a supplier created without one.
    #[serde(deserialize_with = "money_currency")]
    pub default_currency: pm_domain::Currency,
}

/// A currency people pay with (not XAU, XXX, ...).
fn money_currency<'de, D: serde::Deserializer<'de>>(d: D) -> Result<pm_domain::Currency, D::Error> {
    let c = pm_domain::Currency::deserialize(d)?;
    if !c.is_money() {
        return Err(serde::de::Error::custom(format!(
            "{c} is not a currency people pay with"
        )));
    }
    Ok(c)
}

/// The default Amazon SP-API seller account (accounts can also be added through the API), the
/// hosts, and the rate of `searchCatalogItems`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonSettings {
    /// LWA client id of the default account; unset: no account from the settings.
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub refresh_token: Option<Secret>,
    /// Country code (`FR`) or marketplace id of the default account.
    pub marketplace: String,
    /// The SP-API host; unset: the marketplace's regional host.
    pub endpoint: Option<String>,
    /// The LWA token endpoint.
    pub lwa_endpoint: String,
    /// The documented rate of `searchCatalogItems` per account (requests per second) and burst.
    pub rate_per_sec: f64,
    pub burst: u32,
    /// One request to Amazon (LWA or SP-API) at most.
    pub request_timeout_secs: u64,
    /// Key of the stored accounts' secrets; unset: made once in `<data_dir>/amazon-secrets-key`.
    pub secrets_key: Option<Secret>,
}

/// The encoding of thumbnails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThumbnailFormat {
    Jpeg,
    Webp,
}

/// Product images and QR codes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// Largest original accepted, by upload or from a URL, in bytes.
    pub max_upload_bytes: usize,
    /// Most images one product may have.
    pub max_images_per_product: u32,
    /// Largest `width * height` an original may declare (decompression bombs are refused).
    pub max_pixels: u64,
    pub thumbnail_format: ThumbnailFormat,
    /// 1-100.
    pub thumbnail_quality: u8,
    /// How long fetching an image from a URL may take, in seconds.
    pub fetch_timeout_secs: u64,
    /// Whether a URL may name a loopback, private or link-local address.
    pub fetch_private_addresses: bool,
    /// The text of a product's QR code; `{id}` and `{ean}` are replaced.
    pub qr_url_template: String,
    /// Pixels per QR module in the PNG (1-64).
    pub qr_module_px: u32,
    /// `Cache-Control: max-age` of image metadata, links and QR codes, in seconds.
    pub cache_max_age_secs: u64,
}

/// Code2ASIN jobs and resolvers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code2asinSettings {
    /// A match at or above this confidence is written to the product's ASIN without a person.
    pub auto_apply_threshold: f64,
    /// How long a resolver waits for a batch of 20 EANs to fill before sending fewer.
    pub batch_window_ms: u64,
    /// The most EANs one job may hold.
    pub max_eans_per_job: usize,
    /// Resolvers alive at most (one per account and marketplace), and their idle stop.
    pub max_resolvers: usize,
    pub resolver_idle_secs: u64,
    /// The share of the allowed rate a resolver uses (below 1.0 so that timing noise between
    /// this host and Amazon's never makes a request arrive before its token).
    pub rate_margin: f64,
    /// Requests tried for one EAN (5xx, timeouts) before its result is `error`.
    pub max_attempts: u32,
}
