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
//! every request for the advertised refill time with jitter, and spaces the following requests
//! further apart (the rate × 0.8 per 429, down to a quarter; 5% back per success) with a burst
//! of 1 until then. Pages of one search are spaced by at least one interval. The bucket's burst
//! is one less than the account's: one token stays in reserve against a request delayed on its
//! way (the network, a busy host) arriving together with the next; only the first burst of a
//! run is smaller for it.

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
    /// The bucket's burst now: one less than the account's (one token always in reserve, so
    /// that a request delayed on its way, by the network or a busy host, never arrives
    /// together with the next one), 1 after a 429 until `slow` is back to 1.
    burst_now: u32,
    /// EANs to request, oldest first, with the attempts already made for each.
    /// Shared with the dispatch futures, which cut their batch from it the moment their token
    /// is there (not when the actor gets round to it: a mailbox full of `Enqueue`s would delay
    /// the request past its slot and bunch it with the next). Locked for a push or a drain only.
    queue: Arc<parking_lot::Mutex<VecDeque<Queued>>>,
    waiters: HashMap<String, Vec<Waiter>>,
    /// The dispatch whose token is being waited for, if any (one at a time; cleared by its
    /// `Sent`, or by its `BatchDone` if the `Sent` was lost).
    waiting: Option<u64>,
    dispatches: u64,
    window: Option<TimerId>,
    /// No request before this (after a 429 or a failure).
    /// No request before this (after a 429, a failure, or to space requests when slowed);
    /// shared with the dispatch futures, which check it after their token. Locked briefly.
    hold_until: Arc<parking_lot::Mutex<Option<Instant>>>,
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
            burst_now: 1,
            queue: Arc::new(parking_lot::Mutex::new(VecDeque::new())),
            waiters: HashMap::new(),
            waiting: None,
            dispatches: 0,
            window: None,
            hold_until: Arc::new(parking_lot::Mutex::new(None)),
            in_flight: 0,
            stats: Stats::default(),
        };
        r.burst_now = r.normal_burst();
        r.rebuild_limiter();
        r
    }

    fn normal_burst(&self) -> u32 {
        self.cfg.burst.saturating_sub(1).max(1)
    }

    /// Requests per second this resolver allows itself now.
    fn rate(&self) -> f64 {
        let base = self
            .advertised
            .map_or(self.cfg.rate_per_sec, |a| a.min(self.cfg.rate_per_sec));
        (base * self.deps.margin).max(0.001)
    }

    /// A new bucket at the current rate (at start, and when Amazon advertises a lower one).
    /// A new bucket starts full, so it is only made when the rate changes, never to slow down
    /// after a 429 (that is `slow`, spacing requests further apart).
    fn rebuild_limiter(&mut self) {
        let burst = self.burst_now.max(1);
        let period = Duration::from_secs_f64(1.0 / self.rate());
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        self.limiter = Arc::new(RateLimiter::direct(quota));
    }

    fn hold(&self, until: Instant) {
        let mut h = self.hold_until.lock();
        *h = Some(h.map_or(until, |x| x.max(until)));
    }

    fn held(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut h = self.hold_until.lock();
        match *h {
            Some(until) if until > now => Some(until),
            _ => {
                *h = None;
                None
            }
        }
    }

    fn kick(&mut self, ctx: &Ctx<Self>) {
        let queued = self.queue.lock().len();
        if self.waiting.is_some() || queued == 0 {
            return;
        }
        if let Some(until) = self.held() {
            if self.window.is_none() {
                self.window = Some(ctx.schedule(until - Instant::now(), WindowEnd));
            }
            return;
        }
        if queued >= BATCH || self.deps.window.is_zero() {
            self.dispatch(ctx);
        } else if self.window.is_none() {
            self.window = Some(ctx.schedule(self.deps.window, WindowEnd));
        }
    }

    /// Waits for a token, then cuts a batch from the queue and sends it at once.
    fn dispatch(&mut self, ctx: &Ctx<Self>) {
        self.dispatches += 1;
        let id = self.dispatches;
        self.waiting = Some(id);
        self.in_flight += 1;
        let limiter = self.limiter.clone();
        let client = self.cfg.client.clone();
        let queue = self.queue.clone();
        let hold = self.hold_until.clone();
        let me = ctx.mailbox();
        let marketplace = self.cfg.marketplace_id.clone();
        let interval = Duration::from_secs_f64(1.0 / self.rate());
        ctx.pipe(async move {
            // The access token first (a round trip to LWA when it must be renewed), then the
            // request's token: so the request leaves as soon as it has its token.
            let _ = client.tokens().access_token().await;
            // A hold first, the token after it: a token taken and then slept on would leave
            // with the next one (the bucket refills from when the token was taken).
            loop {
                let until = *hold.lock();
                match until {
                    Some(until) if until > Instant::now() => tokio::time::sleep_until(until.into()).await,
                    _ => break,
                }
            }
            limiter.until_ready().await;
            let batch: Vec<Queued> = {
                let mut q = queue.lock();
                let n = q.len().min(BATCH);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                return BatchDone {
                    id,
                    batch,
                    result: None,
                };
            }
            // The actor may wait for the next token now (told without waiting for its answer:
            // the request leaves first).
            tokio::spawn(async move {
                let _ = me.send(Sent(id)).await;
            });
            let eans: Vec<Gtin> = batch.iter().map(|q| q.ean).collect();
            // The first request spends the token just taken; later pages and a retry after a
            // 403 wait for tokens of their own, and never leave sooner than one interval after
            // the previous request of this search: a page lost to a 429 would cost the whole
            // batch (its earlier pages are dropped), so pages do not burst.
            let mut last: Option<Instant> = None;
            let result = client
                .search_paced(&marketplace, &eans, || {
                    let previous = last.replace(Instant::now());
                    let limiter = limiter.clone();
                    async move {
                        if let Some(previous) = previous {
                            tokio::time::sleep_until((previous + interval).into()).await;
                            limiter.until_ready().await;
                        }
                    }
                })
                .await;
            BatchDone {
                id,
                batch,
                result: Some(result),
            }
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
            "queue_depth": self.queue.lock().len(),
            "waiting_eans": self.waiters.len(),
            "in_flight_requests": self.in_flight,
            "rate_per_sec": self.rate(),
            "burst": self.burst_now,
            "slow_factor": self.slow,
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
            // The persisted answers of all these EANs in one query, so that the EANs that need
            // a request reach the queue together (and leave it 20 at a time) rather than one
            // database round trip apart.
            let g14s: Vec<String> = msg.eans.iter().map(|e| e.as_gtin14().to_owned()).collect();
            let since = chrono::Utc::now().timestamp_millis() - deps.ttl.as_millis() as i64;
            let known = match deps.store.history(&marketplace, &g14s, since).await {
                Ok(k) => Arc::new(k),
                Err(e) => {
                    tracing::warn!(error = %e, "code2asin history unreadable; asking amazon");
                    Arc::new(HashMap::new())
                }
            };
            let lookups = msg.eans.into_iter().map(|ean| {
                let (me, deps, marketplace, hits, known) = (
                    me.clone(),
                    deps.clone(),
                    marketplace.clone(),
                    hits.clone(),
                    known.clone(),
                );
                async move {
                    let requested = std::sync::atomic::AtomicBool::new(false);
                    let cost = parking_lot::Mutex::new(Cost::default());
                    let key = format!("{marketplace}:{}", ean.as_gtin14());
                    let loaded = deps
                        .cache
                        .get_or_load(Kind::Code2asinMappings, &key, async {
                            load(&ean, &known, &me, &requested, &cost).await
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

/// The cache's loader: the persisted answer if recent (read beforehand for the whole call),
/// else a request through the resolver (which persists the answers of each batch).
async fn load(
    ean: &Gtin,
    known: &HashMap<String, Vec<CandidateAsin>>,
    me: &pm_supervisors::Mailbox<Resolver>,
    requested: &std::sync::atomic::AtomicBool,
    cost: &parking_lot::Mutex<Cost>,
) -> Result<bytes::Bytes, NoAnswer> {
    if let Some(c) = known.get(ean.as_gtin14()) {
        return Ok(serde_json::to_vec(c).unwrap_or_default().into());
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
    Ok(serde_json::to_vec(&answer?).unwrap_or_default().into())
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
            self.queue.lock().push_back(Queued {
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
        if self.waiting.is_none() && !self.queue.lock().is_empty() {
            if self.held().is_some() {
                self.kick(ctx);
            } else {
                self.dispatch(ctx);
            }
        }
        Reply::Ready(Ok(()))
    }
}

/// A dispatch future took its token and sent its batch: the next token may be waited for.
struct Sent(u64);

impl Handles<Sent> for Resolver {
    type Ok = ();
    type Err = std::convert::Infallible;
    fn handle(&mut self, msg: Sent, ctx: &Ctx<Self>) -> Reply<Result<(), std::convert::Infallible>> {
        if self.waiting == Some(msg.0) {
            self.waiting = None;
        }
        if self.slow < 1.0 {
            // After a 429: the next request waits longer than the bucket alone would make it.
            let extra = (1.0 / self.slow - 1.0) / self.rate();
            self.hold(Instant::now() + Duration::from_secs_f64(extra));
        }
        self.kick(ctx);
        Reply::Ready(Ok(()))
    }
}

/// A request's outcome.
struct BatchDone {
    id: u64,
    batch: Vec<Queued>,
    /// `None`: the queue was empty when the token came (nothing sent).
    result: Option<Result<pm_amazon::SearchOutcome, SpApiError>>,
}

impl Handles<BatchDone> for Resolver {
    type Ok = ();
    type Err = std::convert::Infallible;
    fn handle(&mut self, msg: BatchDone, ctx: &Ctx<Self>) -> Reply<Result<(), std::convert::Infallible>> {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.waiting == Some(msg.id) {
            self.waiting = None;
        }
        let Some(result) = msg.result else {
            // Nothing was sent (the queue was empty when the token came).
            self.kick(ctx);
            return Reply::Ready(Ok(()));
        };
        let labels = [
            ("account", self.cfg.account.clone()),
            ("marketplace", self.cfg.marketplace_id.clone()),
        ];
        let mut batch = msg.batch;
        let requests = match &result {
            Ok(out) => out.requests.max(1),
            Err(_) => 1,
        };
        self.stats.requests += u64::from(requests);
        metrics::counter!("pm_code2asin_requests_total", &labels).increment(u64::from(requests));
        let share = 1.0 / batch.len().max(1) as f64;
        for q in &mut batch {
            q.cost.requests += f64::from(requests) * share;
        }
        match result {
            Ok(out) => {
                if let Some(rl) = out.rate_limit {
                    self.stats.last_rate_limit = Some(rl);
                    let lower =
                        rl < self.cfg.rate_per_sec && self.advertised.is_none_or(|a| (a - rl).abs() > 1e-9);
                    if lower {
                        tracing::info!(resolver = %self.key, rate = rl, "amazon advertises a lower rate; slowing down");
                        self.advertised = Some(rl);
                        self.rebuild_limiter();
                        // The new bucket starts full: no burst into the lower rate.
                        self.hold(Instant::now() + Duration::from_secs_f64(1.0 / self.rate()));
                    }
                }
                if self.slow < 1.0 {
                    self.slow = (self.slow + 0.05).min(1.0);
                    if self.slow >= 1.0 && self.burst_now < self.normal_burst() {
                        self.burst_now = self.normal_burst();
                        self.rebuild_limiter();
                    }
                }
                let eans: Vec<Gtin> = batch.iter().map(|q| q.ean).collect();
                let mut found = match_items(&eans, &out.items);
                let mut answers = Vec::with_capacity(batch.len());
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
                        .collect::<Vec<_>>();
                    answers.push((q.ean.as_gtin14().to_owned(), candidates.clone()));
                    self.answer(q, Ok(candidates));
                }
                // Kept for the next day's jobs and other instances (one statement per batch).
                let (store, marketplace) = (self.deps.store.clone(), self.cfg.marketplace_id.clone());
                tokio::spawn(async move {
                    if let Err(e) = store.put_history(&marketplace, &answers).await {
                        tracing::warn!(error = %e, "code2asin answers not persisted");
                    }
                });
            }
            Err(SpApiError::Throttled { rate_limit }) => {
                self.stats.throttles += 1;
                metrics::counter!("pm_code2asin_throttles_total", &labels).increment(1);
                let wait = pm_amazon::throttle_backoff(rate_limit.or(Some(self.rate())));
                let jitter = 1.0 + fastrand::f64();
                self.hold(Instant::now() + wait.mul_f64(jitter));
                self.slow = (self.slow * 0.8).max(0.25);
                if self.burst_now > 1 {
                    // No bursts into a server that just said no (a new bucket of 1 holds at
                    // most the one token a burst of 1 allows anyway).
                    self.burst_now = 1;
                    self.rebuild_limiter();
                }
                tracing::warn!(
                    resolver = %self.key,
                    hold_ms = (wait.as_millis() as f64 * jitter) as u64,
                    "amazon throttled a request; holding and slowing down"
                );
                let mut queue = self.queue.lock();
                for mut q in batch.into_iter().rev() {
                    q.cost.throttles += share;
                    queue.push_front(q);
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
                        self.queue.lock().push_back(q);
                    }
                }
                let backoff =
                    Duration::from_millis(500 * 2u64.pow(worst.min(6))).mul_f64(1.0 + fastrand::f64());
                self.hold(Instant::now() + backoff);
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
