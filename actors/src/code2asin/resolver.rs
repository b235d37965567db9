//! [`Resolver`] (`code2asin.resolver.<account>.<marketplace>`): turns EANs into Amazon
//! candidates for one seller account in one marketplace, spending that account's
//! `searchCatalogItems` quota as fully as it allows and never beyond.
//!
//! A caller sends [`Resolve`] with EANs. Each EAN goes through the two-level cache
//! (`code2asin_mappings`, 24 h) whose loader reads the persisted answers
//! (`code2asin_history`) and, failing those, asks this actor ([`Enqueue`]): so an EAN already
//! asked by another job on this instance is waited for, not requested again (the cache's
//! single flight), and a known EAN costs no request.
//!
//! Queued EANs are sent 20 per request. A request waits for a token of a governor bucket at the
//! account's rate × `code2asin.rate_margin` (2/s, burst 2 by default; lowered when
//! `x-amzn-RateLimit-Limit` says so); a token taken, the batch is cut from whatever is queued
//! then, so batches fill while the bucket refills. With fewer than 20 queued and the bucket
//! idle, the batch waits `code2asin.batch_window_ms` for more. Requests run concurrently (the
//! bucket, not the round trip, sets the pace). A 429 puts the batch back at the front, holds
//! every request for the advertised refill time with jitter, and slows the bucket (burst 1,
//! rate × 0.8, down to a quarter), which recovers by 5% per success.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use pm_amazon::{match_items, CatalogClient, SpApiError};
use pm_domain::Gtin;
use pm_storage::cache::{Cache, Kind};
use pm_storage::code2asin::{CandidateAsin, Code2asin};
use pm_supervisors::{Behaviour, Ctx, Handles, Reply, TimerId};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// Most EANs per `searchCatalogItems` call.
const BATCH: usize = pm_amazon::MAX_IDENTIFIERS;

/// One account in one marketplace, as a resolver is started with.
pub struct ResolverConfig {
    /// `settings` or the account's id.
    pub account: String,
    pub marketplace_id: String,
    pub client: CatalogClient,
    pub rate_per_sec: f64,
    pub burst: u32,
}

/// What every resolver shares.
pub struct ResolverDeps {
    pub cache: Cache,
    pub store: Code2asin,
    /// How long an answer is trusted (`cache.ttl.code2asin_mappings`).
    pub ttl: Duration,
    pub window: Duration,
    pub margin: f64,
    pub max_attempts: u32,
    /// The configuration of each resolver by key (`<account>.<marketplace>`), put here by the
    /// job before it starts the resolver, read by the resolver's factory (also after a
    /// restart). Locked for a lookup or an insert only.
    pub directory: parking_lot::Mutex<HashMap<String, Arc<ResolverConfig>>>,
}

/// Why an EAN got no answer.
#[derive(Debug, Clone, PartialEq)]
pub struct NoAnswer {
    pub message: String,
    /// Worth asking again later (the resolver restarted before answering).
    pub retryable: bool,
    /// The account cannot be used (Amazon denied it, LWA refused its credentials): no EAN of
    /// the job will get an answer.
    pub account: bool,
}

/// What an EAN's answer cost: its share of the requests (and 429s) of the batches it was in.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub requests: f64,
    pub throttles: f64,
}

/// The answer for one EAN.
#[derive(Debug, Clone)]
pub struct Answer {
    pub ean: Gtin,
    /// Every candidate (empty: Amazon does not know the EAN).
    pub result: Result<Vec<CandidateAsin>, NoAnswer>,
    /// Answered from the cache or the persisted answers, without a request.
    pub from_cache: bool,
    pub cost: Cost,
}

/// Resolves EANs; answered when every one has its answer.
pub struct Resolve {
    pub eans: Vec<Gtin>,
}

/// Asks Amazon about one EAN (the cache loader's call); answered through `reply`.
pub struct Enqueue {
    pub ean: Gtin,
    pub reply: Waiter,
}

type Waiter = oneshot::Sender<(Result<Vec<CandidateAsin>, NoAnswer>, Cost)>;

/// An EAN waiting for a request, with what was spent on it so far.
struct Queued {
    ean: Gtin,
    attempts: u32,
    cost: Cost,
}

pub struct Resolver {
    key: String,
    cfg: Arc<ResolverConfig>,
    deps: Arc<ResolverDeps>,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The rate Amazon advertised for this account when lower than the configured one.
    advertised: Option<f64>,
    /// 1.0, lowered by 429s, recovering with successes.
    slow: f64,
    /// EANs to request, oldest first, with the attempts already made for each.
    queue: VecDeque<Queued>,
    waiters: HashMap<String, Vec<Waiter>>,
    /// A token is being waited for.
    waiting_token: bool,
    window: Option<TimerId>,
    /// No request before this (after a 429 or a failure).
    hold_until: Option<Instant>,
    in_flight: usize,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    requests: u64,
    throttles: u64,
    failures: u64,
    answered: u64,
    cache_hits: Arc<std::sync::atomic::AtomicU64>,
    last_rate_limit: Option<f64>,
}

impl Resolver {
    /// The resolver of `key`, whose configuration the job put in the directory.
    pub fn new(key: &str, deps: Arc<ResolverDeps>) -> Self {
        let cfg = deps
            .directory
            .lock()
            .get(key)
            .cloned()
            .expect("the job puts a resolver's configuration in the directory before starting it");
        let mut r = Self {
            key: key.to_owned(),
            limiter: Arc::new(RateLimiter::direct(Quota::per_second(NonZeroU32::MIN))),
            cfg,
            deps,
            advertised: None,
            slow: 1.0,
            queue: VecDeque::new(),
            waiters: HashMap::new(),
            waiting_token: false,
            window: None,
            hold_until: None,
            in_flight: 0,
            stats: Stats::default(),
        };
        r.rebuild_limiter();
        r
    }

    /// Requests per second this resolver allows itself now.
    fn rate(&self) -> f64 {
        let base = self
            .advertised
            .map_or(self.cfg.rate_per_sec, |a| a.min(self.cfg.rate_per_sec));
        (base * self.deps.margin * self.slow).max(0.001)
    }

    /// A new bucket at the current rate: the configured burst while all is well, 1 after a
    /// throttle (no burst into a server that just said no).
    fn rebuild_limiter(&mut self) {
        let burst = if self.slow < 1.0 { 1 } else { self.cfg.burst.max(1) };
        let period = Duration::from_secs_f64(1.0 / self.rate());
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        self.limiter = Arc::new(RateLimiter::direct(quota));
    }

    fn kick(&mut self, ctx: &Ctx<Self>) {
        if self.waiting_token || self.queue.is_empty() {
            return;
        }
        if let Some(until) = self.hold_until {
            let now = Instant::now();
            if until > now {
                if self.window.is_none() {
                    self.window = Some(ctx.schedule(until - now, WindowEnd));
                }
                return;
            }
            self.hold_until = None;
        }
        if self.queue.len() >= BATCH || self.deps.window.is_zero() {
            self.wait_token(ctx);
        } else if self.window.is_none() {
            self.window = Some(ctx.schedule(self.deps.window, WindowEnd));
        }
    }

    fn wait_token(&mut self, ctx: &Ctx<Self>) {
        self.waiting_token = true;
        let limiter = self.limiter.clone();
        ctx.pipe(async move {
            limiter.until_ready().await;
            TokenReady
        });
    }

    fn answer(&mut self, q: &Queued, result: Result<Vec<CandidateAsin>, NoAnswer>) {
        self.stats.answered += 1;
        for w in self.waiters.remove(q.ean.as_str()).unwrap_or_default() {
            let _ = w.send((result.clone(), q.cost));
        }
    }
}

impl Behaviour for Resolver {
    fn busy(&self) -> bool {
        !self.waiters.is_empty() || self.in_flight > 0
    }

    fn observe(&self) -> Value {
        json!({
            "account": self.cfg.account,
            "marketplace": self.cfg.marketplace_id,
            "queue_depth": self.queue.len(),
            "waiting_eans": self.waiters.len(),
            "in_flight_requests": self.in_flight,
            "rate_per_sec": self.rate(),
            "burst": if self.slow < 1.0 { 1 } else { self.cfg.burst },
            "tokens_available": self.limiter.check().is_ok(),
            "slowed": self.slow < 1.0,
            "requests": self.stats.requests,
            "throttles": self.stats.throttles,
            "failures": self.stats.failures,
            "answered": self.stats.answered,
            "cache_hits": self.stats.cache_hits.load(std::sync::atomic::Ordering::Relaxed),
            "rate_limit_header": self.stats.last_rate_limit,
        })
    }
}

impl Handles<Resolve> for Resolver {
    type Ok = Vec<Answer>;
    type Err = std::convert::Infallible;
    fn handle(
        &mut self,
        msg: Resolve,
        ctx: &Ctx<Self>,
    ) -> Reply<Result<Vec<Answer>, std::convert::Infallible>> {
        let me = ctx.mailbox();
        let deps = self.deps.clone();
        let marketplace = self.cfg.marketplace_id.clone();
        let hits = self.stats.cache_hits.clone();
        Reply::spawn(async move {
            let lookups = msg.eans.into_iter().map(|ean| {
                let (me, deps, marketplace, hits) =
                    (me.clone(), deps.clone(), marketplace.clone(), hits.clone());
                async move {
                    let requested = std::sync::atomic::AtomicBool::new(false);
                    let cost = parking_lot::Mutex::new(Cost::default());
                    let key = format!("{marketplace}:{}", ean.as_gtin14());
                    let loaded = deps
                        .cache
                        .get_or_load(Kind::Code2asinMappings, &key, async {
                            load(&deps, &marketplace, &ean, &me, &requested, &cost).await
                        })
                        .await;
                    let from_cache = !requested.load(std::sync::atomic::Ordering::Relaxed);
                    let result = loaded.and_then(|b| {
                        serde_json::from_slice::<Vec<CandidateAsin>>(&b).map_err(|e| NoAnswer {
                            message: format!("cached answer unreadable: {e}"),
                            retryable: true,
                            account: false,
                        })
                    });
                    if from_cache && result.is_ok() {
                        hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        metrics::counter!("pm_code2asin_cache_hits_total").increment(1);
                    }
                    let cost = *cost.lock();
                    Answer {
                        ean,
                        result,
                        from_cache,
                        cost,
                    }
                }
            });
            Ok(futures::future::join_all(lookups).await)
        })
    }
}

/// The cache's loader: the persisted answer if recent, else a request through the resolver
/// (whose answer is then persisted).
async fn load(
    deps: &ResolverDeps,
    marketplace: &str,
    ean: &Gtin,
    me: &pm_supervisors::Mailbox<Resolver>,
    requested: &std::sync::atomic::AtomicBool,
    cost: &parking_lot::Mutex<Cost>,
) -> Result<bytes::Bytes, NoAnswer> {
    let g14 = ean.as_gtin14().to_owned();
    let since = chrono::Utc::now().timestamp_millis() - deps.ttl.as_millis() as i64;
    match deps
        .store
        .history(marketplace, std::slice::from_ref(&g14), since)
        .await
    {
        Ok(found) => {
            if let Some(c) = found.get(&g14) {
                return Ok(serde_json::to_vec(c).unwrap_or_default().into());
            }
        }
        Err(e) => tracing::warn!(error = %e, "code2asin history unreadable; asking amazon"),
    }
    requested.store(true, std::sync::atomic::Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    me.send(Enqueue { ean: *ean, reply: tx })
        .await
        .map_err(|e| NoAnswer {
            message: format!("resolver unavailable: {e}"),
            retryable: true,
            account: false,
        })?;
    let (answer, spent) = rx.await.map_err(|_| NoAnswer {
        message: "the resolver restarted before answering".into(),
        retryable: true,
        account: false,
    })?;
    *cost.lock() = spent;
    let candidates = answer?;
    if let Err(e) = deps
        .store
        .put_history(marketplace, &[(g14, candidates.clone())])
        .await
    {
        tracing::warn!(error = %e, "code2asin answer not persisted");
    }
    Ok(serde_json::to_vec(&candidates).unwrap_or_default().into())
}

impl Handles<Enqueue> for Resolver {
    type Ok = ();
    type Err = std::convert::Infallible;
    fn handle(&mut self, msg: Enqueue, ctx: &Ctx<Self>) -> Reply<Result<(), std::convert::Infallible>> {
        let key = msg.ean.as_str().to_owned();
        let waiters = self.waiters.entry(key).or_default();
        let first = waiters.is_empty();
        waiters.push(msg.reply);
        if first {
            self.queue.push_back(Queued {
                ean: msg.ean,
                attempts: 0,
                cost: Cost::default(),
            });
        }
        self.kick(ctx);
        Reply::Ready(Ok(()))
    }
}

/// The batching window (or a hold) is over.
struct WindowEnd;

impl Handles<WindowEnd> for Resolver {
    type Ok = ();
    type Err = std::convert::Infallible;
    fn handle(&mut self, _: WindowEnd, ctx: &Ctx<Self>) -> Reply<Result<(), std::convert::Infallible>> {
        self.window = None;
        if !self.waiting_token && !self.queue.is_empty() {
            if self.hold_until.is_some_and(|h| h > Instant::now()) {
                self.kick(ctx);
            } else {
                self.hold_until = None;
                self.wait_token(ctx);
            }
        }
        Reply::Ready(Ok(()))
    }
}

/// A token of the bucket is ours: send a batch.
struct TokenReady;

impl Handles<TokenReady> for Resolver {
    type Ok = ();
    type Err = std::convert::Infallible;
    fn handle(&mut self, _: TokenReady, ctx: &Ctx<Self>) -> Reply<Result<(), std::convert::Infallible>> {
        self.waiting_token = false;
        if self.hold_until.is_some_and(|h| h > Instant::now()) {
            // A 429 arrived while this token was awaited: the hold wins.
            self.kick(ctx);
            return Reply::Ready(Ok(()));
        }
        let n = self.queue.len().min(BATCH);
        if n == 0 {
            return Reply::Ready(Ok(()));
        }
        let batch: Vec<Queued> = self.queue.drain(..n).collect();
        self.in_flight += 1;
        let client = self.cfg.client.clone();
        let marketplace = self.cfg.marketplace_id.clone();
        let limiter = self.limiter.clone();
        ctx.pipe(async move {
            let eans: Vec<Gtin> = batch.iter().map(|q| q.ean).collect();
            // The first request spends the token just taken; later pages and a retry after a
            // 403 wait for tokens of their own.
            let mut first = true;
            let result = client
                .search_paced(&marketplace, &eans, || {
                    let wait = !std::mem::take(&mut first);
                    let limiter = limiter.clone();
                    async move {
                        if wait {
                            limiter.until_ready().await;
                        }
                    }
                })
                .await;
            BatchDone { batch, result }
        });
        if !self.queue.is_empty() {
            self.kick(ctx);
        }
        Reply::Ready(Ok(()))
    }
}

/// A request's outcome.
struct BatchDone {
    batch: Vec<Queued>,
    result: Result<pm_amazon::SearchOutcome, SpApiError>,
}

impl Handles<BatchDone> for Resolver {
    type Ok = ();
    type Err = std::convert::Infallible;
    fn handle(&mut self, msg: BatchDone, ctx: &Ctx<Self>) -> Reply<Result<(), std::convert::Infallible>> {
        self.in_flight -= 1;
        let labels = [
            ("account", self.cfg.account.clone()),
            ("marketplace", self.cfg.marketplace_id.clone()),
        ];
        let mut batch = msg.batch;
        let requests = match &msg.result {
            Ok(out) => out.requests.max(1),
            Err(_) => 1,
        };
        self.stats.requests += u64::from(requests);
        metrics::counter!("pm_code2asin_requests_total", &labels).increment(u64::from(requests));
        let share = 1.0 / batch.len().max(1) as f64;
        for q in &mut batch {
            q.cost.requests += f64::from(requests) * share;
        }
        match msg.result {
            Ok(out) => {
                if let Some(rl) = out.rate_limit {
                    self.stats.last_rate_limit = Some(rl);
                    let lower =
                        rl < self.cfg.rate_per_sec && self.advertised.is_none_or(|a| (a - rl).abs() > 1e-9);
                    if lower {
                        tracing::info!(resolver = %self.key, rate = rl, "amazon advertises a lower rate; slowing down");
                        self.advertised = Some(rl);
                        self.rebuild_limiter();
                    }
                }
                if self.slow < 1.0 {
                    self.slow = (self.slow + 0.05).min(1.0);
                    self.rebuild_limiter();
                }
                let eans: Vec<Gtin> = batch.iter().map(|q| q.ean).collect();
                let mut found = match_items(&eans, &out.items);
                for q in &batch {
                    let candidates = found
                        .remove(q.ean.as_str())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| CandidateAsin {
                            asin: c.asin.as_str().to_owned(),
                            title: c.title,
                            brand: c.brand,
                            sales_rank: c.sales_rank,
                            image: c.image,
                        })
                        .collect();
                    self.answer(q, Ok(candidates));
                }
            }
            Err(SpApiError::Throttled { rate_limit }) => {
                self.stats.throttles += 1;
                metrics::counter!("pm_code2asin_throttles_total", &labels).increment(1);
                let wait = pm_amazon::throttle_backoff(rate_limit.or(Some(self.rate())));
                let jitter = 1.0 + fastrand::f64();
                self.hold_until = Some(Instant::now() + wait.mul_f64(jitter));
                self.slow = (self.slow * 0.8).max(0.25);
                self.rebuild_limiter();
                tracing::warn!(
                    resolver = %self.key,
                    hold_ms = (wait.as_millis() as f64 * jitter) as u64,
                    "amazon throttled a request; holding and slowing down"
                );
                for mut q in batch.into_iter().rev() {
                    q.cost.throttles += share;
                    self.queue.push_front(q);
                }
            }
            Err(e) if e.is_retryable() => {
                self.stats.failures += 1;
                let mut worst = 0;
                for mut q in batch {
                    q.attempts += 1;
                    worst = worst.max(q.attempts);
                    if q.attempts >= self.deps.max_attempts {
                        let message = format!("amazon kept failing after {} attempts: {e}", q.attempts);
                        self.answer(
                            &q,
                            Err(NoAnswer {
                                message,
                                retryable: false,
                                account: false,
                            }),
                        );
                    } else {
                        self.queue.push_back(q);
                    }
                }
                let backoff =
                    Duration::from_millis(500 * 2u64.pow(worst.min(6))).mul_f64(1.0 + fastrand::f64());
                self.hold_until = Some(Instant::now() + backoff);
                tracing::warn!(resolver = %self.key, error = %e, "amazon request failed; will retry");
            }
            Err(e) => {
                self.stats.failures += 1;
                tracing::warn!(resolver = %self.key, error = %e, "amazon refused a request");
                let account = matches!(e, SpApiError::Unauthorized(_) | SpApiError::Token(_));
                let message = e.to_string();
                for q in &batch {
                    self.answer(
                        q,
                        Err(NoAnswer {
                            message: message.clone(),
                            retryable: false,
                            account,
                        }),
                    );
                }
            }
        }
        self.kick(ctx);
        Reply::Ready(Ok(()))
    }
}

/// The dynamic supervisor of the resolvers.
pub type Resolvers = pm_supervisors::DynamicSupervisor<Resolver>;
