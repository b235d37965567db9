//! Per-actor state shared by the mailbox handle, the running cell and the registry.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Semaphore;

/// Upper bounds (seconds) of the handling-time histogram buckets.
pub const HANDLING_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// Lifecycle of a supervised actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorStatus {
    Starting,
    Running,
    /// Has work but has finished nothing within its stuck deadline.
    Stuck,
    /// Stopped by its supervisor (temporary child that crashed, or shutdown).
    Stopped,
    /// Stopped because its supervisor gave up (restart intensity exceeded).
    Escalated,
    /// Crashed and not restarted (a temporary child), or its runtime is gone.
    Failed,
}

impl ActorStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Starting,
            1 => Self::Running,
            3 => Self::Stopped,
            4 => Self::Escalated,
            _ => Self::Failed,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Starting => 0,
            Self::Running | Self::Stuck => 1,
            Self::Stopped => 3,
            Self::Escalated => 4,
            Self::Failed => 5,
        }
    }

    /// Whether the actor accepts messages.
    pub fn is_up(self) -> bool {
        matches!(self, Self::Running | Self::Starting)
    }
}

/// Counts of handling time per bucket, lock-free.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; HANDLING_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            max_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = HANDLING_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    fn summary(&self) -> HandlingSummary {
        let count = self.count.load(Ordering::Relaxed);
        let mut cumulative = Vec::with_capacity(HANDLING_BUCKETS.len());
        let mut acc = 0;
        for b in &self.buckets {
            acc += b.load(Ordering::Relaxed);
            cumulative.push(acc);
        }
        let quantile = |q: f64| -> Option<f64> {
            let rank = (q * count as f64).ceil() as u64;
            cumulative
                .iter()
                .position(|c| *c >= rank.max(1))
                .map(|i| HANDLING_BUCKETS[i] * 1000.0)
        };
        let sum = self.sum_nanos.load(Ordering::Relaxed);
        HandlingSummary {
            count,
            sum_seconds: sum as f64 / 1e9,
            mean_ms: if count == 0 {
                0.0
            } else {
                sum as f64 / count as f64 / 1e6
            },
            max_ms: self.max_nanos.load(Ordering::Relaxed) as f64 / 1e6,
            p50_ms_at_most: if count == 0 { None } else { quantile(0.5) },
            p99_ms_at_most: if count == 0 { None } else { quantile(0.99) },
            cumulative_buckets: cumulative,
        }
    }
}

/// Handling time of the messages an actor finished.
#[derive(Debug, Clone, Serialize)]
pub struct HandlingSummary {
    pub count: u64,
    pub sum_seconds: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Upper bound of the bucket holding the median.
    pub p50_ms_at_most: Option<f64>,
    pub p99_ms_at_most: Option<f64>,
    /// Cumulative counts per bound of [`HANDLING_BUCKETS`] (Prometheus `le` buckets).
    #[serde(skip)]
    pub cumulative_buckets: Vec<u64>,
}

/// Everything the registry reports about one actor.
#[derive(Debug, Clone, Serialize)]
pub struct ActorSnapshot {
    pub name: String,
    pub kind: String,
    pub supervisor: String,
    pub status: ActorStatus,
    pub capacity: usize,
    pub depth: usize,
    pub in_flight: usize,
    pub concurrency: usize,
    pub processed: u64,
    /// Messages answered with the caller's own error (not found, invalid input): counted
    /// apart, as they say nothing about the actor's health.
    pub refused: u64,
    pub failed: u64,
    pub panics: u64,
    pub restarts: u64,
    pub rejected: u64,
    pub last_error: Option<String>,
    pub last_restart: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    /// Age of the oldest message not yet finished, in milliseconds.
    pub oldest_pending_ms: Option<u64>,
    pub handling: HandlingSummary,
}

/// State shared by an actor's mailbox handles, its cell and the registry.
#[derive(Debug)]
pub(crate) struct Shared {
    pub name: String,
    pub kind: String,
    pub supervisor: String,
    pub capacity: usize,
    /// Mailbox slots. A sender takes one before its message is queued; the permit travels with
    /// the message and is released when the message starts running (or is dropped), so
    /// `capacity - available` is exactly the number of waiting messages.
    pub slots: Arc<Semaphore>,
    pub concurrency: usize,
    /// Limits async handlers running at once to `concurrency` (a store actor: its pool size),
    /// so that a flood waits in the bounded mailbox instead of piling up in the pool.
    pub running: Arc<Semaphore>,
    pub send_timeout: Duration,
    pub stuck_after: Duration,
    status: AtomicU8,
    in_flight: AtomicUsize,
    processed: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    panics: AtomicU64,
    restarts: AtomicU64,
    rejected: AtomicU64,
    /// Short critical sections only (insert/remove one entry); never held across an await.
    last_error: Mutex<Option<String>>,
    last_restart: Mutex<Option<DateTime<Utc>>>,
    started_at: Mutex<DateTime<Utc>>,
    /// Enqueue time of every message not yet finished, keyed by a sequence number so the first
    /// entry is the oldest: what stuck detection looks at. Same locking rule as above.
    pending: Mutex<BTreeMap<u64, Instant>>,
    seq: AtomicU64,
    /// Time of the last finished message, as nanoseconds since `epoch`.
    last_finished: AtomicU64,
    epoch: Instant,
    histogram: Histogram,
    #[cfg(feature = "fault-injection")]
    pub paused: tokio::sync::watch::Sender<bool>,
}

pub(crate) struct ActorConfig {
    pub name: String,
    pub kind: String,
    pub supervisor: String,
    pub capacity: usize,
    pub concurrency: usize,
    pub send_timeout: Duration,
    pub stuck_after: Duration,
}

impl Shared {
    pub fn new(c: ActorConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(c.capacity)),
            running: Arc::new(Semaphore::new(c.concurrency.max(1))),
            name: c.name,
            kind: c.kind,
            supervisor: c.supervisor,
            capacity: c.capacity,
            concurrency: c.concurrency.max(1),
            send_timeout: c.send_timeout,
            stuck_after: c.stuck_after,
            status: AtomicU8::new(ActorStatus::Starting.as_u8()),
            in_flight: AtomicUsize::new(0),
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            last_error: Mutex::new(None),
            last_restart: Mutex::new(None),
            started_at: Mutex::new(Utc::now()),
            pending: Mutex::new(BTreeMap::new()),
            seq: AtomicU64::new(0),
            last_finished: AtomicU64::new(0),
            epoch: Instant::now(),
            histogram: Histogram::new(),
            #[cfg(feature = "fault-injection")]
            paused: tokio::sync::watch::channel(false).0,
        }
    }

    pub fn status(&self) -> ActorStatus {
        ActorStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    pub fn set_status(&self, s: ActorStatus) {
        self.status.store(s.as_u8(), Ordering::Release);
    }

    pub fn depth(&self) -> usize {
        self.capacity - self.slots.available_permits().min(self.capacity)
    }

    pub fn note_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Registers a message entering the mailbox; the ticket removes it when dropped.
    pub fn enqueue(self: &Arc<Self>) -> Ticket {
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(id, Instant::now());
        Ticket {
            shared: self.clone(),
            id,
        }
    }

    pub fn begin(&self) -> Instant {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Instant::now()
    }

    /// Records a finished message: `error` is the handler's error text, if it returned one.
    /// Counts a finished message: `error` is the actor's failure, `refused` an error that is the
    /// caller's (a 404 or 422 at the edge).
    pub fn finish(&self, started: Instant, error: Option<String>, refused: bool) {
        let now = Instant::now();
        self.histogram.record(now - started);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.processed.fetch_add(1, Ordering::Relaxed);
        let since = u64::try_from((now - self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.last_finished.store(since, Ordering::Release);
        if let Some(e) = error {
            self.failed.fetch_add(1, Ordering::Relaxed);
            *self.last_error.lock() = Some(e);
        } else if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Undoes [`Shared::begin`] for a handler that handed its work to an async task, which
    /// counts itself in flight once it runs.
    pub fn unbegin(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Records a handler that panicked.
    pub fn crashed(&self, reason: &str) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.panics.fetch_add(1, Ordering::Relaxed);
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(format!("panic: {reason}"));
    }

    /// A crash noticed outside a request (a failed start, a piped future's panic).
    pub fn note_panic(&self, reason: &str) {
        self.panics.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(reason.to_owned());
    }

    pub fn note_error(&self, reason: &str) {
        *self.last_error.lock() = Some(reason.to_owned());
    }

    /// How long the actor has had nothing queued nor running; `None` while it has work.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 || !self.pending.lock().is_empty() {
            return None;
        }
        let last = Duration::from_nanos(self.last_finished.load(Ordering::Acquire));
        Some(self.epoch.elapsed().saturating_sub(last))
    }

    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        *self.last_restart.lock() = Some(now);
        *self.started_at.lock() = now;
    }

    /// Stuck: the oldest unfinished message is older than the deadline and nothing finished
    /// within the deadline either.
    fn is_stuck(&self, oldest: Option<Duration>) -> bool {
        let Some(age) = oldest else { return false };
        if age <= self.stuck_after {
            return false;
        }
        let last = Duration::from_nanos(self.last_finished.load(Ordering::Acquire));
        let since_last = self.epoch.elapsed().saturating_sub(last);
        since_last > self.stuck_after
    }

    pub fn snapshot(&self) -> ActorSnapshot {
        let oldest = self.pending.lock().first_key_value().map(|(_, t)| t.elapsed());
        let mut status = self.status();
        if status == ActorStatus::Running && self.is_stuck(oldest) {
            status = ActorStatus::Stuck;
        }
        ActorSnapshot {
            name: self.name.clone(),
            kind: self.kind.clone(),
            supervisor: self.supervisor.clone(),
            status,
            capacity: self.capacity,
            depth: self.depth(),
            in_flight: self.in_flight.load(Ordering::Acquire),
            concurrency: self.concurrency,
            processed: self.processed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
            last_restart: *self.last_restart.lock(),
            started_at: *self.started_at.lock(),
            oldest_pending_ms: oldest.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            handling: self.histogram.summary(),
        }
    }
}

/// A message's presence in the mailbox or in flight, for stuck detection.
pub(crate) struct Ticket {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.shared.pending.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_summarises() {
        let h = Histogram::new();
        for _ in 0..99 {
            h.record(Duration::from_micros(200));
        }
        h.record(Duration::from_millis(40));
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms_at_most, Some(0.25));
        assert_eq!(s.p99_ms_at_most, Some(0.25));
        assert!((s.max_ms - 40.0).abs() < 1e-9);
        assert_eq!(*s.cumulative_buckets.last().unwrap(), 100);
    }
}
