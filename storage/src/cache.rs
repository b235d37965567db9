//! The two-level response cache: L1 in process (moka, bounded by bytes, short TTL), L2 Redis
//! when `cache.redis_url` is set (TTL per data type), invalidated on write and, through Redis
//! pub/sub, on every instance.
//!
//! Values are the serialized response bytes ([`Bytes`]): a hit clones a reference count and
//! does no serialization; an L1 hit does not touch Redis.
//!
//! # Reads
//!
//! [`Cache::get_or_load`]: L1 → L2 (one `GET`, bounded by `cache.redis_timeout_ms`) → the
//! loader, filling both levels. Concurrent misses of one key on one instance run one L2 read and
//! one load (moka coalesces them). Redis errors, timeouts and a Redis that is down never fail a
//! read: they are counted (`redis_errors`), logged at most every 10 s, and the read falls through
//! to the loader. Errors of the loader are returned and never cached.
//!
//! # Invalidation
//!
//! - [`Cache::invalidate`] (one key): removes the L1 entry, replaces the Redis entry with a
//!   *tombstone* that lives `cache.invalidation_hold_ms`, and publishes the key on
//!   `cache.invalidation_channel`; the other instances drop it from their L1. L2 fills use
//!   `SET … NX`, so a read that loaded the old value before the write cannot put it back while
//!   the tombstone lives (a plain `DEL` would let it). A read that sees the tombstone loads from
//!   the database and does not fill L2.
//! - [`Cache::invalidate_kind`] (a whole data type, e.g. every search result after a product
//!   write): generations instead of scans. L1 keys carry a local per-kind *epoch*; L2 keys carry
//!   the kind's *generation*, a counter in Redis (`<prefix>gen:<kind>`). Invalidating bumps the
//!   local epoch and `INCR`s the generation, publishing the new value in the same Lua script;
//!   every instance then takes the larger generation and bumps its epoch. Old entries become
//!   unreachable at once and age out by TTL or size: O(1) whatever the number of entries, no
//!   `SCAN`/`KEYS`, no moka invalidation closures on the hit path.
//! - A load that overlaps an invalidation of its key (tracked per kind in 64 hash stripes of
//!   counters) is returned but not kept, so the old value cannot outlive the write in L1.
//!
//! # Redis down
//!
//! L2 is used only while the subscription is up and the generations are synchronized (a
//! background task subscribes, pings every few seconds, reconnects with backoff). While it is
//! down, reads go L1 → loader without waiting on Redis, and invalidations that cannot reach
//! Redis mark their kind *dirty*: that kind skips L2 until its generation has been bumped
//! (which also clears every instance's L1 of that kind), so a missed `DEL` cannot serve stale
//! data later. After a reconnect the L1 is cleared (messages may have been missed) and
//! generations are re-read.
//!
//! # Metrics
//!
//! `pm_cache_requests_total{kind, result}` (`l1_hit`, `l2_hit`, `miss`, `coalesced`: waited for
//! another caller's load) and `pm_cache_redis_errors_total{kind}` (`kind="link"` for the
//! subscription), recorded through the `metrics` facade with handles built in [`Cache::start`]:
//! start the cache after the recorder is installed. [`Cache::stats`] gives the same figures per
//! cache, exact per application.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use pm_config::{CacheSettings, CacheTtlSettings};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

use crate::redis::{Redis, RedisError};

/// The cached data types, each with its own L2 TTL (`cache.ttl.<kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Categories,
    Taxonomies,
    Brands,
    Products,
    Suppliers,
    EnrichmentStats,
    ImportJobs,
    ExportJobs,
    Code2asinMappings,
    AmazonProductData,
    SearchResults,
    ApiRateLimits,
}

impl Kind {
    pub const COUNT: usize = 12;
    pub const ALL: [Kind; Kind::COUNT] = [
        Kind::Categories,
        Kind::Taxonomies,
        Kind::Brands,
        Kind::Products,
        Kind::Suppliers,
        Kind::EnrichmentStats,
        Kind::ImportJobs,
        Kind::ExportJobs,
        Kind::Code2asinMappings,
        Kind::AmazonProductData,
        Kind::SearchResults,
        Kind::ApiRateLimits,
    ];

    /// The name used in settings, Redis keys, messages and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Categories => "categories",
            Kind::Taxonomies => "taxonomies",
            Kind::Brands => "brands",
            Kind::Products => "products",
            Kind::Suppliers => "suppliers",
            Kind::EnrichmentStats => "enrichment_stats",
            Kind::ImportJobs => "import_jobs",
            Kind::ExportJobs => "export_jobs",
            Kind::Code2asinMappings => "code2asin_mappings",
            Kind::AmazonProductData => "amazon_product_data",
            Kind::SearchResults => "search_results",
            Kind::ApiRateLimits => "api_rate_limits",
        }
    }

    /// The L2 lifetime of this kind.
    pub fn ttl(self, ttl: &CacheTtlSettings) -> Duration {
        Duration::from_secs(match self {
            Kind::Categories => ttl.categories,
            Kind::Taxonomies => ttl.taxonomies,
            Kind::Brands => ttl.brands,
            Kind::Products => ttl.products,
            Kind::Suppliers => ttl.suppliers,
            Kind::EnrichmentStats => ttl.enrichment_stats,
            Kind::ImportJobs => ttl.import_jobs,
            Kind::ExportJobs => ttl.export_jobs,
            Kind::Code2asinMappings => ttl.code2asin_mappings,
            Kind::AmazonProductData => ttl.amazon_product_data,
            Kind::SearchResults => ttl.search_results,
            Kind::ApiRateLimits => ttl.api_rate_limits,
        })
    }

    const fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache.redis_url: {0}")]
    Redis(#[from] RedisError),
}

/// Per-kind figures since start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindStats {
    pub kind: Kind,
    pub l1_hits: u64,
    pub l2_hits: u64,
    pub misses: u64,
    /// Reads that waited for a concurrent load of the same key instead of loading.
    pub coalesced: u64,
    pub redis_errors: u64,
}

/// A snapshot of one cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheStats {
    /// Whether Redis is configured.
    pub redis_configured: bool,
    /// Whether L2 is in use: subscribed to the invalidation channel, generations in sync.
    pub redis_connected: bool,
    /// Failures of the subscription link (connects, pings); per-command ones are per kind.
    pub redis_link_errors: u64,
    pub l1_entries: u64,
    pub l1_bytes: u64,
    pub kinds: Vec<KindStats>,
}

/// The two-level cache. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("instance", &self.inner.instance)
            .field("redis", &self.inner.l2.is_some())
            .finish()
    }
}

/// Counter stripes per kind for the "was this key invalidated while I loaded it" check.
const STRIPES: usize = 64;
/// Fixed cost counted per L1 entry on top of key and value bytes.
const L1_ENTRY_OVERHEAD: usize = 96;
/// L2 value tags: the first byte of every value kept in Redis.
const TAG_VALUE: u8 = 1;
const TAG_TOMBSTONE: u8 = 0;
/// Subscription link: connect timeout, ping interval, reconnect backoff.
const LINK_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const LINK_PING_EVERY: Duration = Duration::from_secs(5);
const LINK_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LINK_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// At most one warning per this interval about Redis errors; the rest go to debug.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Bumps a kind's generation in Redis and publishes it: KEYS[1] the generation key, ARGV[1]
/// the channel, ARGV[2] the message up to the generation value.
const BUMP_SCRIPT: &str = "local g = redis.call('INCR', KEYS[1]) \
     redis.call('PUBLISH', ARGV[1], ARGV[2] .. g .. '}') return g";

/// An L1 key. Its `Hash` must equal [`L1Ref`]'s (same fields, same order; `String` hashes as
/// `str`), so that lookups and invalidations need no allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct L1Key {
    kind: Kind,
    epoch: u64,
    key: String,
}

#[derive(Debug, Clone, Copy, Hash)]
struct L1Ref<'a> {
    kind: Kind,
    epoch: u64,
    key: &'a str,
}

impl moka::Equivalent<L1Key> for L1Ref<'_> {
    fn equivalent(&self, k: &L1Key) -> bool {
        self.kind == k.kind && self.epoch == k.epoch && self.key == k.key
    }
}

impl L1Ref<'_> {
    fn to_key(self) -> L1Key {
        L1Key {
            kind: self.kind,
            epoch: self.epoch,
            key: self.key.to_owned(),
        }
    }
}

/// A count kept both here (for [`Cache::stats`]) and in the `metrics` recorder.
struct Tally {
    n: AtomicU64,
    metric: metrics::Counter,
}

impl Tally {
    fn new(metric: metrics::Counter) -> Self {
        Self {
            n: AtomicU64::new(0),
            metric,
        }
    }

    fn incr(&self) {
        self.n.fetch_add(1, Ordering::Relaxed);
        self.metric.increment(1);
    }

    fn get(&self) -> u64 {
        self.n.load(Ordering::Relaxed)
    }
}

struct KindState {
    kind: Kind,
    l2_ttl_secs: u64,
    /// Local; part of every L1 key; bumped by every kind-wide invalidation (local or remote).
    epoch: AtomicU64,
    /// Local; bumped by every single-key invalidation (local or remote), by key hash.
    stripes: [AtomicU64; STRIPES],
    /// The kind's generation in Redis as last known; part of every L2 key.
    generation: AtomicU64,
    /// Invalidations of this kind that could not reach Redis, and how many of them the last
    /// generation bump covered: while they differ the kind is dirty and skips L2. Only the
    /// subscription task writes `dirty_cleared`.
    dirty_marks: AtomicU64,
    dirty_cleared: AtomicU64,
    l1_hits: Tally,
    l2_hits: Tally,
    misses: Tally,
    coalesced: Tally,
    redis_errors: Tally,
}

impl KindState {
    fn new(kind: Kind, ttl: &CacheTtlSettings) -> Self {
        let k = kind.as_str();
        let requests = |result: &'static str| {
            Tally::new(metrics::counter!("pm_cache_requests_total", "kind" => k, "result" => result))
        };
        Self {
            kind,
            l2_ttl_secs: kind.ttl(ttl).as_secs().max(1),
            epoch: AtomicU64::new(0),
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            generation: AtomicU64::new(0),
            dirty_marks: AtomicU64::new(0),
            dirty_cleared: AtomicU64::new(0),
            l1_hits: requests("l1_hit"),
            l2_hits: requests("l2_hit"),
            misses: requests("miss"),
            coalesced: requests("coalesced"),
            redis_errors: Tally::new(metrics::counter!("pm_cache_redis_errors_total", "kind" => k)),
        }
    }

    fn is_dirty(&self) -> bool {
        self.dirty_marks.load(Ordering::Acquire) != self.dirty_cleared.load(Ordering::Acquire)
    }

    /// Changes whenever the key's stripe or the whole kind is invalidated (both only grow).
    fn version(&self, stripe: usize) -> (u64, u64) {
        (
            self.epoch.load(Ordering::Acquire),
            self.stripes[stripe].load(Ordering::Acquire),
        )
    }
}

/// State shared with the subscription task, which must not keep [`Inner`] alive.
struct Link {
    ready: AtomicBool,
    wake: Notify,
}

struct L2 {
    redis: Redis,
    client: redis::Client,
    timeout: Duration,
    hold_ms: u64,
    prefix: String,
    channel: String,
    link: Arc<Link>,
    link_errors: Tally,
}

struct Inner {
    instance: String,
    l1: moka::future::Cache<L1Key, Bytes>,
    kinds: [KindState; Kind::COUNT],
    l2: Option<L2>,
    started: Instant,
    last_warn_ms: AtomicU64,
    /// Dropped with the cache: stops the subscription task.
    _stop: Option<oneshot::Sender<()>>,
}

struct L1Expiry {
    ttl: [Duration; Kind::COUNT],
}

impl moka::Expiry<L1Key, Bytes> for L1Expiry {
    fn expire_after_create(&self, key: &L1Key, _: &Bytes, _: Instant) -> Option<Duration> {
        Some(self.ttl[key.kind.index()])
    }

    fn expire_after_update(
        &self,
        key: &L1Key,
        _: &Bytes,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl[key.kind.index()])
    }
}

/// A message on the invalidation channel. `key`: one entry; `gen`: the kind's new generation.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    instance: String,
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gen: Option<u64>,
}

enum L2Read {
    Hit(Bytes),
    Miss,
    /// A tombstone: recently invalidated; load, and do not fill.
    Held,
    /// Not used (not configured, link down, kind dirty) or failed.
    Unavailable,
}

#[derive(Clone, Copy)]
enum Outcome {
    L2Hit,
    Miss,
}

impl Cache {
    /// Builds the cache from `settings`. Without `cache.redis_url` it is L1 only. With it, L2
    /// uses `redis` (the application's shared connection) or, when `None`, a lazily connecting
    /// one of its own, and a background task keeps a subscription to the invalidation channel.
    /// Waits for the first attempt to reach Redis (at most a few seconds) so that a fresh
    /// instance uses L2 from its first request; a Redis that is down does not fail this.
    ///
    /// Must run inside a tokio runtime. Build it after the `metrics` recorder is installed.
    pub async fn start(settings: &CacheSettings, redis: Option<Redis>) -> Result<Cache, CacheError> {
        let l1_ttl = settings.l1_ttl();
        let ttls: [Duration; Kind::COUNT] = std::array::from_fn(|i| {
            let kind_ttl = Kind::ALL[i].ttl(&settings.ttl);
            l1_ttl.min(kind_ttl).max(Duration::from_millis(1))
        });
        let l1 = moka::future::Cache::builder()
            .name("pm-cache-l1")
            .max_capacity(settings.l1_max_bytes)
            .weigher(|k: &L1Key, v: &Bytes| {
                u32::try_from(k.key.len() + v.len() + L1_ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .expire_after(L1Expiry { ttl: ttls })
            .build();
        let kinds = Kind::ALL.map(|k| KindState::new(k, &settings.ttl));

        let (l2, stop) = match &settings.redis_url {
            None => (None, None),
            Some(url) => {
                let client = crate::redis::client(url.expose(), settings.redis_ca_file.as_deref())?;
                let redis = match redis {
                    Some(r) => r,
                    None => Redis::lazy(client.clone())?,
                };
                let link = Arc::new(Link {
                    ready: AtomicBool::new(false),
                    wake: Notify::new(),
                });
                let (stop_tx, stop_rx) = oneshot::channel();
                let l2 = L2 {
                    redis,
                    client,
                    timeout: settings.redis_timeout(),
                    hold_ms: settings.invalidation_hold_ms.max(1),
                    prefix: settings.key_prefix.clone(),
                    channel: settings.invalidation_channel.clone(),
                    link,
                    link_errors: Tally::new(
                        metrics::counter!("pm_cache_redis_errors_total", "kind" => "link"),
                    ),
                };
                (Some(l2), Some((stop_tx, stop_rx)))
            }
        };
        let (stop_tx, stop_rx) = match stop {
            Some((tx, rx)) => (Some(tx), Some(rx)),
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            instance: uuid::Uuid::new_v4().simple().to_string(),
            l1,
            kinds,
            l2,
            started: Instant::now(),
            last_warn_ms: AtomicU64::new(0),
            _stop: stop_tx,
        });
        if let (Some(l2), Some(stop_rx)) = (&inner.l2, stop_rx) {
            let (first_tx, first_rx) = oneshot::channel();
            tokio::spawn(subscription(
                Arc::downgrade(&inner),
                l2.client.clone(),
                l2.channel.clone(),
                l2.link.clone(),
                stop_rx,
                first_tx,
            ));
            let _ = tokio::time::timeout(LINK_CONNECT_TIMEOUT + Duration::from_millis(500), first_rx).await;
        }
        Ok(Cache { inner })
    }

    /// The cached bytes of `(kind, key)`, from L1, else L2, else `loader` (whose value then
    /// fills both). Concurrent calls for one key share one load; a caller whose shared load
    /// failed runs its own `loader` once, so every error returned comes from the caller's own
    /// loader. Never fails because of Redis.
    pub async fn get_or_load<E, F>(&self, kind: Kind, key: &str, loader: F) -> Result<Bytes, E>
    where
        F: Future<Output = Result<Bytes, E>>,
    {
        let inner = &*self.inner;
        let ks = &inner.kinds[kind.index()];
        let l1_key = L1Ref {
            kind,
            epoch: ks.epoch.load(Ordering::Acquire),
            key,
        };
        if let Some(v) = inner.l1.get(&l1_key).await {
            ks.l1_hits.incr();
            return Ok(v);
        }

        let stripe = stripe_of(key);
        let mut loader = Some(loader);
        let mut failed: Option<E> = None;
        let mut outcome = Outcome::Miss;
        let mut stale = false;
        let init = async {
            let before = ks.version(stripe);
            let generation = ks.generation.load(Ordering::Acquire);
            let read = inner.l2_get(ks, generation, key).await;
            if let L2Read::Hit(v) = read {
                outcome = Outcome::L2Hit;
                stale = ks.version(stripe) != before;
                return Ok(v);
            }
            let load = loader.take().expect("the init future runs at most once");
            match load.await {
                Ok(v) => {
                    outcome = Outcome::Miss;
                    stale = ks.version(stripe) != before;
                    if !stale && matches!(read, L2Read::Miss) {
                        inner.l2_fill(ks, generation, key, &v).await;
                    }
                    Ok(v)
                }
                Err(e) => {
                    failed = Some(e);
                    Err(())
                }
            }
        };
        let result = inner.l1.entry(l1_key.to_key()).or_try_insert_with(init).await;
        match result {
            Ok(entry) if entry.is_fresh() => {
                match outcome {
                    Outcome::L2Hit => ks.l2_hits.incr(),
                    Outcome::Miss => ks.misses.incr(),
                }
                if stale {
                    // Invalidated while loading: answer this caller, keep nothing.
                    inner.l1.invalidate(&l1_key).await;
                }
                Ok(entry.into_value())
            }
            Ok(entry) => {
                ks.coalesced.incr();
                Ok(entry.into_value())
            }
            Err(_) => {
                ks.misses.incr();
                match (failed, loader) {
                    (Some(e), _) => Err(e),
                    // We waited on another caller's load, which failed: our own, uncached.
                    (None, Some(load)) => load.await,
                    (None, None) => unreachable!("a loader that ran either succeeded or failed"),
                }
            }
        }
    }

    /// Drops `(kind, key)` on every level and every instance. Call after the write committed.
    /// Never fails: if Redis cannot be told, the kind skips L2 until its generation is bumped.
    pub async fn invalidate(&self, kind: Kind, key: &str) {
        let inner = &*self.inner;
        let ks = &inner.kinds[kind.index()];
        ks.stripes[stripe_of(key)].fetch_add(1, Ordering::AcqRel);
        inner.l1_remove(ks, key).await;
        let Some(l2) = &inner.l2 else { return };
        if !l2.link.ready.load(Ordering::Acquire) || ks.is_dirty() {
            inner.mark_dirty(ks);
            return;
        }
        let message = Message {
            instance: inner.instance.clone(),
            kind,
            key: Some(key.to_owned()),
            gen: None,
        };
        let payload = serde_json::to_vec(&message).unwrap_or_default();
        let generation = ks.generation.load(Ordering::Acquire);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(l2.key(kind, generation, key))
            .arg(&[TAG_TOMBSTONE][..])
            .arg("PX")
            .arg(l2.hold_ms)
            .ignore()
            .cmd("PUBLISH")
            .arg(&l2.channel)
            .arg(payload)
            .ignore();
        let mut conn = l2.redis.connection();
        match tokio::time::timeout(l2.timeout, pipe.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                inner.redis_error(Some(ks), "invalidate", &e);
                inner.mark_dirty(ks);
            }
            Err(_) => {
                inner.redis_error(Some(ks), "invalidate", &"timed out");
                inner.mark_dirty(ks);
            }
        }
    }

    /// Drops every entry of `kind` on every level and every instance, in O(1).
    pub async fn invalidate_kind(&self, kind: Kind) {
        let inner = &*self.inner;
        let ks = &inner.kinds[kind.index()];
        ks.epoch.fetch_add(1, Ordering::AcqRel);
        let Some(l2) = &inner.l2 else { return };
        if !l2.link.ready.load(Ordering::Acquire) {
            inner.mark_dirty(ks);
            return;
        }
        if inner.bump_generation(ks).await.is_err() {
            inner.mark_dirty(ks);
        }
    }

    /// Whether L2 is in use (Redis configured, subscribed, generations in sync).
    pub fn redis_connected(&self) -> bool {
        self.inner
            .l2
            .as_ref()
            .is_some_and(|l2| l2.link.ready.load(Ordering::Acquire))
    }

    /// Hits, misses and errors per kind, and the state of the Redis link.
    pub fn stats(&self) -> CacheStats {
        let inner = &*self.inner;
        CacheStats {
            redis_configured: inner.l2.is_some(),
            redis_connected: self.redis_connected(),
            redis_link_errors: inner.l2.as_ref().map_or(0, |l2| l2.link_errors.get()),
            l1_entries: inner.l1.entry_count(),
            l1_bytes: inner.l1.weighted_size(),
            kinds: inner
                .kinds
                .iter()
                .map(|ks| KindStats {
                    kind: ks.kind,
                    l1_hits: ks.l1_hits.get(),
                    l2_hits: ks.l2_hits.get(),
                    misses: ks.misses.get(),
                    coalesced: ks.coalesced.get(),
                    redis_errors: ks.redis_errors.get(),
                })
                .collect(),
        }
    }

    /// The figures of one kind.
    pub fn kind_stats(&self, kind: Kind) -> KindStats {
        let ks = &self.inner.kinds[kind.index()];
        KindStats {
            kind,
            l1_hits: ks.l1_hits.get(),
            l2_hits: ks.l2_hits.get(),
            misses: ks.misses.get(),
            coalesced: ks.coalesced.get(),
            redis_errors: ks.redis_errors.get(),
        }
    }
}

impl L2 {
    fn key(&self, kind: Kind, generation: u64, key: &str) -> String {
        format!("{}{}:{}:{}", self.prefix, kind.as_str(), generation, key)
    }

    fn generation_key(&self, kind: Kind) -> String {
        format!("{}gen:{}", self.prefix, kind.as_str())
    }
}

impl Inner {
    fn l2_for(&self, ks: &KindState) -> Option<&L2> {
        self.l2
            .as_ref()
            .filter(|l2| l2.link.ready.load(Ordering::Acquire) && !ks.is_dirty())
    }

    async fn l2_get(&self, ks: &KindState, generation: u64, key: &str) -> L2Read {
        let Some(l2) = self.l2_for(ks) else {
            return L2Read::Unavailable;
        };
        let mut conn = l2.redis.connection();
        let cmd = redis::cmd("GET").arg(l2.key(ks.kind, generation, key)).to_owned();
        match tokio::time::timeout(l2.timeout, cmd.query_async::<Option<Vec<u8>>>(&mut conn)).await {
            Ok(Ok(None)) => L2Read::Miss,
            Ok(Ok(Some(raw))) => match raw.first() {
                Some(&TAG_VALUE) => L2Read::Hit(Bytes::from(raw).slice(1..)),
                Some(&TAG_TOMBSTONE) => L2Read::Held,
                // Not ours (an older format): overwrite it on fill.
                _ => L2Read::Miss,
            },
            Ok(Err(e)) => {
                self.redis_error(Some(ks), "get", &e);
                L2Read::Unavailable
            }
            Err(_) => {
                self.redis_error(Some(ks), "get", &"timed out");
                L2Read::Unavailable
            }
        }
    }

    async fn l2_fill(&self, ks: &KindState, generation: u64, key: &str, value: &Bytes) {
        let Some(l2) = self.l2_for(ks) else { return };
        let mut stored = Vec::with_capacity(value.len() + 1);
        stored.push(TAG_VALUE);
        stored.extend_from_slice(value);
        let cmd = redis::cmd("SET")
            .arg(l2.key(ks.kind, generation, key))
            .arg(stored)
            .arg("EX")
            .arg(ks.l2_ttl_secs)
            .arg("NX")
            .to_owned();
        let mut conn = l2.redis.connection();
        match tokio::time::timeout(l2.timeout, cmd.query_async::<redis::Value>(&mut conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.redis_error(Some(ks), "set", &e),
            Err(_) => self.redis_error(Some(ks), "set", &"timed out"),
        }
    }

    async fn l1_remove(&self, ks: &KindState, key: &str) {
        let l1_key = L1Ref {
            kind: ks.kind,
            epoch: ks.epoch.load(Ordering::Acquire),
            key,
        };
        self.l1.invalidate(&l1_key).await;
    }

    fn mark_dirty(&self, ks: &KindState) {
        ks.dirty_marks.fetch_add(1, Ordering::AcqRel);
        if let Some(l2) = &self.l2 {
            l2.link.wake.notify_one();
        }
    }

    /// INCR the kind's generation in Redis and publish it; adopt it locally.
    async fn bump_generation(&self, ks: &KindState) -> Result<(), ()> {
        let Some(l2) = &self.l2 else { return Ok(()) };
        let head = format!(
            "{{\"instance\":\"{}\",\"kind\":\"{}\",\"gen\":",
            self.instance,
            ks.kind.as_str()
        );
        let cmd = redis::cmd("EVAL")
            .arg(BUMP_SCRIPT)
            .arg(1)
            .arg(l2.generation_key(ks.kind))
            .arg(&l2.channel)
            .arg(head)
            .to_owned();
        let mut conn = l2.redis.connection();
        match tokio::time::timeout(l2.timeout, cmd.query_async::<u64>(&mut conn)).await {
            Ok(Ok(generation)) => {
                ks.generation.fetch_max(generation, Ordering::AcqRel);
                Ok(())
            }
            Ok(Err(e)) => {
                self.redis_error(Some(ks), "bump generation", &e);
                Err(())
            }
            Err(_) => {
                self.redis_error(Some(ks), "bump generation", &"timed out");
                Err(())
            }
        }
    }

    /// Bumps the generation of every dirty kind; a kind stays dirty if Redis still fails.
    async fn flush_dirty(&self) {
        for ks in &self.kinds {
            let marks = ks.dirty_marks.load(Ordering::Acquire);
            if marks != ks.dirty_cleared.load(Ordering::Acquire) && self.bump_generation(ks).await.is_ok() {
                ks.dirty_cleared.store(marks, Ordering::Release);
            }
        }
    }

    /// After (re)subscribing: adopt Redis' generations, drop L1 (messages may have been missed
    /// while unsubscribed), bump the dirty kinds.
    async fn resync(&self) -> Result<(), ()> {
        let Some(l2) = &self.l2 else { return Ok(()) };
        let keys: Vec<String> = Kind::ALL.iter().map(|k| l2.generation_key(*k)).collect();
        let cmd = redis::cmd("MGET").arg(keys).to_owned();
        let mut conn = l2.redis.connection();
        let gens =
            match tokio::time::timeout(l2.timeout, cmd.query_async::<Vec<Option<u64>>>(&mut conn)).await {
                Ok(Ok(g)) => g,
                Ok(Err(e)) => {
                    self.link_error("sync generations", &e);
                    return Err(());
                }
                Err(_) => {
                    self.link_error("sync generations", &"timed out");
                    return Err(());
                }
            };
        for (ks, g) in self.kinds.iter().zip(gens) {
            ks.generation.fetch_max(g.unwrap_or(0), Ordering::AcqRel);
            ks.epoch.fetch_add(1, Ordering::AcqRel);
        }
        self.flush_dirty().await;
        Ok(())
    }

    /// A message from the invalidation channel.
    async fn on_message(&self, payload: &[u8]) {
        let message: Message = match serde_json::from_slice(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring a malformed cache invalidation message");
                return;
            }
        };
        if message.instance == self.instance {
            return;
        }
        let ks = &self.kinds[message.kind.index()];
        if let Some(generation) = message.gen {
            ks.generation.fetch_max(generation, Ordering::AcqRel);
            ks.epoch.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(key) = message.key {
            ks.stripes[stripe_of(&key)].fetch_add(1, Ordering::AcqRel);
            self.l1_remove(ks, &key).await;
        }
    }

    fn redis_error(&self, ks: Option<&KindState>, op: &str, error: &dyn std::fmt::Display) {
        if let Some(ks) = ks {
            ks.redis_errors.incr();
        }
        self.log_error(op, error);
    }

    fn link_error(&self, op: &str, error: &dyn std::fmt::Display) {
        if let Some(l2) = &self.l2 {
            l2.link_errors.incr();
        }
        self.log_error(op, error);
    }

    /// Warns at most once per [`WARN_EVERY`]; the rest at debug.
    fn log_error(&self, op: &str, error: &dyn std::fmt::Display) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .last_warn_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(op, error = %error, "cache: redis failed; serving from L1 and the database");
        } else {
            tracing::debug!(op, error = %error, "cache: redis failed");
        }
    }
}

fn stripe_of(key: &str) -> usize {
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % STRIPES as u64) as usize
}

/// Keeps this instance subscribed to the invalidation channel: subscribe, resync, handle
/// messages, ping; on any failure mark the link down and reconnect with backoff. Ends when the
/// cache is dropped.
async fn subscription(
    inner: Weak<Inner>,
    client: redis::Client,
    channel: String,
    link: Arc<Link>,
    mut stop: oneshot::Receiver<()>,
    first: oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut backoff = LINK_BACKOFF_MIN;
    loop {
        let connect = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let attempt = tokio::select! {
            _ = &mut stop => return,
            r = tokio::time::timeout(LINK_CONNECT_TIMEOUT, connect) => r,
        };
        let connected = match attempt {
            Ok(Ok(pubsub)) => {
                let Some(strong) = inner.upgrade() else { return };
                let synced = strong.resync().await;
                drop(strong);
                synced.ok().map(|()| pubsub)
            }
            Ok(Err(e)) => {
                if let Some(strong) = inner.upgrade() {
                    strong.link_error("subscribe", &e);
                }
                None
            }
            Err(_) => {
                if let Some(strong) = inner.upgrade() {
                    strong.link_error("subscribe", &"timed out");
                }
                None
            }
        };
        if let Some(pubsub) = connected {
            link.ready.store(true, Ordering::Release);
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            backoff = LINK_BACKOFF_MIN;
            tracing::info!(%channel, "cache: subscribed to redis invalidations");
            let (mut sink, mut messages) = pubsub.split();
            let mut ping = tokio::time::interval(LINK_PING_EVERY);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ping.tick().await;
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    message = messages.next() => {
                        let Some(message) = message else {
                            if let Some(strong) = inner.upgrade() {
                                strong.link_error("subscription", &"connection closed");
                            }
                            break;
                        };
                        let Some(strong) = inner.upgrade() else { return };
                        strong.on_message(message.get_payload_bytes()).await;
                    }
                    _ = ping.tick() => {
                        let pong = tokio::time::timeout(LINK_CONNECT_TIMEOUT, sink.ping::<redis::Value>()).await;
                        let Some(strong) = inner.upgrade() else { return };
                        match pong {
                            Ok(Ok(_)) => strong.flush_dirty().await,
                            Ok(Err(e)) => { strong.link_error("ping", &e); break; }
                            Err(_) => { strong.link_error("ping", &"timed out"); break; }
                        }
                    }
                    _ = link.wake.notified() => {
                        let Some(strong) = inner.upgrade() else { return };
                        strong.flush_dirty().await;
                    }
                }
            }
        }
        link.ready.store(false, Ordering::Release);
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(LINK_BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn settings() -> CacheSettings {
        pm_config::load_from(None, Vec::new()).unwrap().settings.cache
    }

    /// Settings on the test Redis with keys and channel of their own, or `None` when
    /// `PM_TEST_REDIS_URL` is unset.
    fn redis_settings(test: &str) -> Option<CacheSettings> {
        let url = pm_config::testenv::test_server("PM_TEST_REDIS_URL")?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut s = settings();
        s.redis_url = Some(pm_config::Secret::new(url));
        s.key_prefix = format!("pmtest:{test}:{}:", &id[..12]);
        s.invalidation_channel = format!("pmtest:{test}:{}:inv", &id[..12]);
        // Generous: the test machine is shared.
        s.redis_timeout_ms = 2000;
        Some(s)
    }

    async fn started(s: &CacheSettings) -> Cache {
        let cache = Cache::start(s, None).await.unwrap();
        if s.redis_url.is_some() {
            eventually("redis link up", || async { cache.redis_connected() }).await;
        }
        cache
    }

    /// Polls `cond` every 10 ms until it holds; panics after 10 s.
    async fn eventually<F, Fut>(what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond().await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn value(v: &'static str) -> Result<Bytes, std::convert::Infallible> {
        Ok(Bytes::from_static(v.as_bytes()))
    }

    /// A loader that counts its runs.
    async fn counted(runs: &AtomicUsize, v: &'static str) -> Result<Bytes, std::convert::Infallible> {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from_static(v.as_bytes()))
    }

    async fn raw_get(s: &CacheSettings, key: &str) -> Option<Vec<u8>> {
        let client = redis::Client::open(s.redis_url.as_ref().unwrap().expose()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("GET").arg(key).query_async(&mut conn).await.unwrap()
    }

    async fn cleanup(s: &CacheSettings) {
        let client = redis::Client::open(s.redis_url.as_ref().unwrap().expose()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", s.key_prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
        }
    }

    #[test]
    fn cache_settings_defaults_are_the_seeds_and_env_overrides_them() {
        let s = settings();
        assert!(s.redis_url.is_none());
        assert_eq!(s.l1_ttl_secs, 60);
        assert!(s.l1_max_bytes > 0);
        assert_eq!(s.key_prefix, "pm:cache:");
        let ttls: Vec<u64> = Kind::ALL.iter().map(|k| k.ttl(&s.ttl).as_secs()).collect();
        assert_eq!(
            ttls,
            [3600, 7200, 3600, 1800, 1800, 300, 300, 300, 86400, 43200, 300, 60]
        );
        let loaded = pm_config::load_from(
            None,
            vec![
                ("PM__CACHE__TTL__PRODUCTS".to_string(), "60".to_string()),
                ("PM__CACHE__KEY_PREFIX".to_string(), "staging:".to_string()),
            ],
        )
        .unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(
            Kind::Products.ttl(&loaded.settings.cache.ttl),
            Duration::from_secs(60)
        );
        assert_eq!(loaded.settings.cache.key_prefix, "staging:");
    }

    /// Handlers and actors hold these futures across threads.
    #[allow(dead_code)]
    fn cache_futures_are_send(cache: &Cache) {
        fn send<T: Send>(_: T) {}
        send(cache.get_or_load(Kind::Products, "k", async {
            Ok::<_, std::io::Error>(Bytes::new())
        }));
        send(cache.invalidate(Kind::Products, "k"));
        send(cache.invalidate_kind(Kind::Products));
    }

    #[test]
    fn cache_kind_names_match_settings_and_serde() {
        let s = settings();
        let ttl = serde_json::to_value(&s.ttl).unwrap();
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert!(ttl.get(kind.as_str()).is_some(), "{kind:?} has no cache.ttl key");
        }
        assert_eq!(ttl.as_object().unwrap().len(), Kind::COUNT);
    }

    #[tokio::test]
    async fn cache_l1_hit_does_not_load_again() {
        let cache = started(&settings()).await;
        let runs = AtomicUsize::new(0);
        for _ in 0..3 {
            let v = cache
                .get_or_load(Kind::Products, "p1", counted(&runs, "one"))
                .await
                .unwrap();
            assert_eq!(v, "one");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let st = cache.kind_stats(Kind::Products);
        assert_eq!((st.l1_hits, st.l2_hits, st.misses), (2, 0, 1));
        // Same key, other kind: its own entry.
        let v = cache
            .get_or_load(Kind::Brands, "p1", value("brand"))
            .await
            .unwrap();
        assert_eq!(v, "brand");
        assert!(!cache.stats().redis_configured);
    }

    #[tokio::test]
    async fn cache_l1_entries_expire_after_their_ttl() {
        let mut s = settings();
        s.l1_ttl_secs = 1;
        let cache = started(&s).await;
        let runs = AtomicUsize::new(0);
        cache
            .get_or_load(Kind::Brands, "b", counted(&runs, "x"))
            .await
            .unwrap();
        cache
            .get_or_load(Kind::Brands, "b", counted(&runs, "x"))
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let started_at = Instant::now();
        eventually("the l1 entry expires", || async {
            cache
                .get_or_load(Kind::Brands, "b", counted(&runs, "x"))
                .await
                .unwrap();
            runs.load(Ordering::SeqCst) == 2
        })
        .await;
        assert!(started_at.elapsed() >= Duration::from_millis(500));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_concurrent_misses_of_one_key_load_once() {
        let cache = started(&settings()).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let cache = cache.clone();
                let runs = runs.clone();
                tokio::spawn(async move {
                    cache
                        .get_or_load(Kind::Products, "hot", async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Ok::<_, std::convert::Infallible>(Bytes::from_static(b"hot"))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "hot");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let st = cache.kind_stats(Kind::Products);
        assert_eq!(st.misses, 1);
        assert_eq!(st.coalesced + st.l1_hits, 31);
    }

    #[tokio::test]
    async fn cache_loader_errors_are_returned_and_not_cached() {
        let cache = started(&settings()).await;
        let err = cache
            .get_or_load(Kind::Products, "missing", async { Err::<Bytes, _>("not found") })
            .await
            .unwrap_err();
        assert_eq!(err, "not found");
        let v = cache
            .get_or_load(Kind::Products, "missing", value("now here"))
            .await
            .unwrap();
        assert_eq!(v, "now here");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_waiters_of_a_failed_load_run_their_own_loader() {
        let cache = started(&settings()).await;
        let loading = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let first = {
            let cache = cache.clone();
            let (loading, release) = (loading.clone(), release.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(Kind::Products, "k", async move {
                        loading.notify_one();
                        release.notified().await;
                        Err::<Bytes, _>("first failed")
                    })
                    .await
            })
        };
        // The first load is running; a second caller of the same key now waits on it (polled
        // once, it is pending behind the first's load), and its loader has not run.
        loading.notified().await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        let mut second = Box::pin(cache.get_or_load(Kind::Products, "k", async move {
            r.store(true, Ordering::SeqCst);
            Ok::<_, &str>(Bytes::from_static(b"second"))
        }));
        assert!(futures::poll!(&mut second).is_pending());
        assert!(
            !ran.load(Ordering::SeqCst),
            "the waiter must not load while the first does"
        );
        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap_err(), "first failed");
        // The first load failed: the waiter runs its own loader.
        assert_eq!(second.await.unwrap(), "second");
        assert!(ran.load(Ordering::SeqCst));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_a_load_overlapping_an_invalidation_is_not_kept() {
        let cache = started(&settings()).await;
        let loading = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let read = {
            let cache = cache.clone();
            let (loading, release) = (loading.clone(), release.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(Kind::Products, "p", async move {
                        loading.notify_one();
                        release.notified().await;
                        Ok::<_, std::convert::Infallible>(Bytes::from_static(b"old"))
                    })
                    .await
                    .unwrap()
            })
        };
        loading.notified().await;
        // The write commits and invalidates while the read still holds the old value.
        cache.invalidate(Kind::Products, "p").await;
        release.notify_one();
        assert_eq!(read.await.unwrap(), "old");
        let v = cache
            .get_or_load(Kind::Products, "p", value("new"))
            .await
            .unwrap();
        assert_eq!(v, "new");
    }

    #[tokio::test]
    async fn cache_invalidate_and_invalidate_kind_without_redis() {
        let cache = started(&settings()).await;
        for key in ["a", "b"] {
            cache
                .get_or_load(Kind::SearchResults, key, value("old"))
                .await
                .unwrap();
        }
        cache
            .get_or_load(Kind::Products, "a", value("old"))
            .await
            .unwrap();
        cache.invalidate(Kind::SearchResults, "a").await;
        assert_eq!(
            cache
                .get_or_load(Kind::SearchResults, "a", value("new"))
                .await
                .unwrap(),
            "new"
        );
        assert_eq!(
            cache
                .get_or_load(Kind::SearchResults, "b", value("new"))
                .await
                .unwrap(),
            "old"
        );
        cache.invalidate_kind(Kind::SearchResults).await;
        assert_eq!(
            cache
                .get_or_load(Kind::SearchResults, "b", value("new"))
                .await
                .unwrap(),
            "new"
        );
        // Other kinds keep their entries.
        assert_eq!(
            cache
                .get_or_load(Kind::Products, "a", value("new"))
                .await
                .unwrap(),
            "old"
        );
    }

    #[tokio::test]
    async fn cache_l2_serves_what_another_l1_does_not_hold() {
        let Some(s) = redis_settings("l2hit") else { return };
        let a = started(&s).await;
        let runs = AtomicUsize::new(0);
        assert_eq!(
            a.get_or_load(Kind::Products, "p1", counted(&runs, "v1"))
                .await
                .unwrap(),
            "v1"
        );
        // A fresh instance (empty L1) reads it from Redis.
        let b = started(&s).await;
        assert_eq!(
            b.get_or_load(Kind::Products, "p1", counted(&runs, "other"))
                .await
                .unwrap(),
            "v1"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(b.kind_stats(Kind::Products).l2_hits, 1);
        // Then from its own L1.
        assert_eq!(
            b.get_or_load(Kind::Products, "p1", counted(&runs, "other"))
                .await
                .unwrap(),
            "v1"
        );
        assert_eq!(b.kind_stats(Kind::Products).l1_hits, 1);
        // Stored with the kind's TTL.
        let client = redis::Client::open(s.redis_url.as_ref().unwrap().expose()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let ttl: i64 = redis::cmd("TTL")
            .arg(format!("{}products:0:p1", s.key_prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((1700..=1800).contains(&ttl), "ttl {ttl}");
        assert_eq!(a.stats().kinds.iter().map(|k| k.redis_errors).sum::<u64>(), 0);
        cleanup(&s).await;
    }

    #[tokio::test]
    async fn cache_invalidate_removes_both_levels() {
        let Some(mut s) = redis_settings("inval") else {
            return;
        };
        s.invalidation_hold_ms = 300;
        let a = started(&s).await;
        a.get_or_load(Kind::Products, "p", value("v1")).await.unwrap();
        let l2_key = format!("{}products:0:p", s.key_prefix);
        assert_eq!(raw_get(&s, &l2_key).await.unwrap(), b"\x01v1");
        a.invalidate(Kind::Products, "p").await;
        // A tombstone: a read that loaded the old value cannot put it back for a while.
        assert_eq!(raw_get(&s, &l2_key).await.unwrap(), [TAG_TOMBSTONE]);
        assert_eq!(
            a.get_or_load(Kind::Products, "p", value("v2")).await.unwrap(),
            "v2"
        );
        let b = started(&s).await;
        assert_eq!(
            b.get_or_load(Kind::Products, "p", value("v2")).await.unwrap(),
            "v2"
        );
        assert_eq!(b.kind_stats(Kind::Products).misses, 1);
        // Once the hold is over, loads fill Redis again.
        eventually("the tombstone expires", || async {
            raw_get(&s, &l2_key).await.is_none()
        })
        .await;
        let c = started(&s).await;
        c.get_or_load(Kind::Products, "p", value("v3")).await.unwrap();
        assert_eq!(raw_get(&s, &l2_key).await.unwrap(), b"\x01v3");
        cleanup(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_invalidation_reaches_the_other_instances_l1() {
        let Some(s) = redis_settings("xinst") else { return };
        let a = started(&s).await;
        let b = started(&s).await;
        assert_eq!(
            a.get_or_load(Kind::Categories, "tree", value("v1"))
                .await
                .unwrap(),
            "v1"
        );
        assert_eq!(
            b.get_or_load(Kind::Categories, "tree", value("v1b"))
                .await
                .unwrap(),
            "v1"
        );
        assert_eq!(
            b.get_or_load(Kind::Categories, "tree", value("v1b"))
                .await
                .unwrap(),
            "v1"
        );
        assert_eq!(b.kind_stats(Kind::Categories).l1_hits, 1);
        a.invalidate(Kind::Categories, "tree").await;
        eventually("b drops its l1 entry", || async {
            b.get_or_load(Kind::Categories, "tree", value("v2"))
                .await
                .unwrap()
                == "v2"
        })
        .await;
        cleanup(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_invalidate_kind_reaches_both_levels_and_instances() {
        let Some(s) = redis_settings("kind") else { return };
        let a = started(&s).await;
        let b = started(&s).await;
        for key in ["q=a", "q=b"] {
            a.get_or_load(Kind::SearchResults, key, value("old"))
                .await
                .unwrap();
            assert_eq!(
                b.get_or_load(Kind::SearchResults, key, value("x")).await.unwrap(),
                "old"
            );
        }
        a.get_or_load(Kind::Products, "p", value("kept")).await.unwrap();
        a.invalidate_kind(Kind::SearchResults).await;
        assert_eq!(
            a.get_or_load(Kind::SearchResults, "q=a", value("new"))
                .await
                .unwrap(),
            "new"
        );
        eventually("b drops the kind", || async {
            b.get_or_load(Kind::SearchResults, "q=b", value("new"))
                .await
                .unwrap()
                == "new"
        })
        .await;
        // A fresh instance does not find the old generation in Redis either.
        let c = started(&s).await;
        assert_eq!(
            c.get_or_load(Kind::SearchResults, "q=b", value("new"))
                .await
                .unwrap(),
            "new"
        );
        assert_eq!(
            c.get_or_load(Kind::Products, "p", value("x")).await.unwrap(),
            "kept"
        );
        cleanup(&s).await;
    }

    /// A Redis server of the test's own (it is paused and killed), killed on drop.
    struct PrivateRedis {
        port: u16,
        child: Option<std::process::Child>,
    }

    impl PrivateRedis {
        fn start(port: Option<u16>) -> Option<Self> {
            let port = port.unwrap_or_else(|| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            });
            let child = std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok()?;
            Some(Self {
                port,
                child: Some(child),
            })
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        fn kill(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    impl Drop for PrivateRedis {
        fn drop(&mut self) {
            self.kill();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_survives_redis_stalls_and_restarts_without_serving_stale_data() {
        if pm_config::testenv::test_server("PM_TEST_REDIS_URL").is_none() {
            return;
        }
        let Some(mut server) = PrivateRedis::start(None) else {
            eprintln!("no redis-server binary: redis outage test skipped");
            return;
        };
        let mut s = settings();
        s.redis_url = Some(pm_config::Secret::new(server.url()));
        s.redis_timeout_ms = 200;
        let client = redis::Client::open(server.url()).unwrap();
        let mut admin = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while admin.is_none() {
            admin = client.get_multiplexed_async_connection().await.ok();
            assert!(Instant::now() < deadline, "private redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut admin = admin.unwrap();
        let a = started(&s).await;
        let b = started(&s).await;
        a.get_or_load(Kind::Products, "p", value("v1")).await.unwrap();
        assert_eq!(
            b.get_or_load(Kind::Products, "p", value("x")).await.unwrap(),
            "v1"
        );
        assert_eq!(b.kind_stats(Kind::Products).l2_hits, 1);

        // Redis stalls: the invalidation cannot reach it, the write still completes quickly.
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(1500)
            .arg("ALL")
            .query_async(&mut admin)
            .await
            .unwrap();
        let t = Instant::now();
        a.invalidate(Kind::Products, "p").await;
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert!(a.kind_stats(Kind::Products).redis_errors >= 1);
        let t = Instant::now();
        assert_eq!(
            a.get_or_load(Kind::Products, "p", value("v2")).await.unwrap(),
            "v2"
        );
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "dirty kind must skip L2"
        );
        // Once Redis answers again, the kind's generation is bumped: b drops its L1 copy and the
        // old L2 entry (never deleted) is unreachable.
        eventually("b sees the write", || async {
            b.get_or_load(Kind::Products, "p", value("v2")).await.unwrap() == "v2"
        })
        .await;
        let c = started(&s).await;
        assert_eq!(
            c.get_or_load(Kind::Products, "p", value("v2")).await.unwrap(),
            "v2"
        );

        // Redis dies: reads go on from L1 and the loader, without waiting on Redis.
        server.kill();
        eventually("a notices", || async { !a.redis_connected() }).await;
        let t = Instant::now();
        assert_eq!(a.get_or_load(Kind::Brands, "x", value("db")).await.unwrap(), "db");
        assert!(t.elapsed() < Duration::from_millis(100), "{:?}", t.elapsed());
        // It comes back (empty): the link reconnects and L2 is used again.
        let _server = PrivateRedis::start(Some(server.port)).unwrap();
        eventually("a reconnects", || async { a.redis_connected() }).await;
        a.get_or_load(Kind::Brands, "y", value("db")).await.unwrap();
        let d = started(&s).await;
        assert_eq!(
            d.get_or_load(Kind::Brands, "y", value("other")).await.unwrap(),
            "db"
        );
        assert!(a.stats().redis_link_errors >= 1);
    }

    #[tokio::test]
    async fn cache_redis_down_serves_from_l1_and_the_loader() {
        let mut s = settings();
        s.redis_url = Some(pm_config::Secret::new("redis://127.0.0.1:1"));
        s.redis_timeout_ms = 100;
        let started_at = Instant::now();
        let cache = Cache::start(&s, None).await.unwrap();
        assert!(!cache.redis_connected());
        let runs = AtomicUsize::new(0);
        for _ in 0..2 {
            let v = cache
                .get_or_load(Kind::Products, "p", counted(&runs, "db"))
                .await
                .unwrap();
            assert_eq!(v, "db");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        cache.invalidate(Kind::Products, "p").await;
        cache.invalidate_kind(Kind::SearchResults).await;
        assert_eq!(
            cache
                .get_or_load(Kind::Products, "p", value("db2"))
                .await
                .unwrap(),
            "db2"
        );
        assert!(
            started_at.elapsed() < Duration::from_secs(3),
            "{:?}",
            started_at.elapsed()
        );
        eventually("link errors are counted", || async {
            cache.stats().redis_link_errors > 0
        })
        .await;
        let stats = cache.stats();
        assert!(stats.redis_configured && !stats.redis_connected);
    }
}
