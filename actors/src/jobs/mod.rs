//! The job layer on the durable queues of [`pm_storage::jobs`]: for every queue, a gate actor
//! that enqueues, lists and cancels (`jobs.<queue>.queue`), and a supervised pool of workers
//! that claim and run jobs (`jobs.<queue>.worker.<n>`, the seeds' counts: imports 4, exports
//! 2, code2asin 3, media one per core, catalog 2).
//!
//! - [`gate`]: [`JobGate`] and its messages.
//! - [`worker`]: [`JobWorker`], one job at a time: claim, run, renew the lease, record.
//! - [`debug`]: the `debug.sleep` kind (when `jobs.debug_kinds` is on) for trying the layer.
//! - [`import`]: `import.file` on the imports queue: a supplier file into the catalog.
//! - [`session`]: [`session::ImportSession`], one per supplier (`import.session.<supplier>`), which
//!   runs that supplier's import jobs and shows their stage.
//!
//! A job kind is a [`JobHandler`] registered for a queue in [`JobKinds`]. Its run can be cut off
//! (the process dies, the worker crashes, the lease is lost) and is then run again: handlers
//! must be idempotent. Events of every job go to the [`Hub`] topics `jobs.<queue>` and
//! `jobs.<queue>.<id>`.

pub mod debug;
pub mod gate;
pub mod import;
pub mod session;
pub mod worker;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use pm_storage::jobs::{Job, Queue};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::events::Hub;

pub use gate::{CancelJob, EnqueueJob, GetJob, JobGate, ListJobs, QueueDepthOf, ResumeJob};
pub use worker::JobWorker;

/// Why a run did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// Worth another attempt after the backoff (a supplier's server down, a timeout).
    Retryable(String),
    /// Trying again would fail the same way (a corrupt file, a bad payload).
    Fatal(String),
    /// The run stopped because its cancellation was asked for.
    Cancelled,
    /// The job cannot go on without input from a person (an import whose columns could not be
    /// mapped with confidence): it waits, queued but not due, with `details` as its progress,
    /// until the input is given and it is resumed ([`pm_storage::jobs::JobQueue::resume`]).
    /// The attempt is not counted.
    Waiting { reason: String, details: Value },
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Retryable(e) | JobError::Fatal(e) => f.write_str(e),
            JobError::Cancelled => f.write_str("cancelled"),
            JobError::Waiting { reason, .. } => f.write_str(reason),
        }
    }
}

/// Runs one kind of job.
pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, run: JobRun) -> BoxFuture<'static, Result<Value, JobError>>;
}

/// What a running job gets: the job as claimed, a way to report progress and to learn that
/// its cancellation was asked for.
#[derive(Clone)]
pub struct JobRun {
    pub job: Arc<Job>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
}

/// The latest progress of a run: written by the run, read by the worker at each lease renewal
/// (stored) and published live at most every [`PROGRESS_EVERY`]. Locked for a field update only.
pub(crate) struct Progress {
    latest: Mutex<(Option<Value>, Option<Instant>)>,
    hub: Hub,
    queue: Queue,
}

/// The most often a job's progress is published live.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl Progress {
    pub(crate) fn take(&self) -> Option<Value> {
        self.latest.lock().0.clone()
    }
}

impl JobRun {
    pub(crate) fn new(job: Job, hub: Hub) -> Self {
        let queue = job.queue;
        Self {
            job: Arc::new(job),
            progress: Arc::new(Progress {
                latest: Mutex::new((None, None)),
                hub,
                queue,
            }),
            cancel: CancellationToken::new(),
        }
    }

    /// Reports progress (`{"done": 10, "total": 100}`, say): kept with the job at the next
    /// lease renewal and pushed to the job's subscribers at most every 250 ms.
    pub fn progress(&self, value: Value) {
        let publish = {
            let mut latest = self.progress.latest.lock();
            latest.0 = Some(value.clone());
            let due = latest.1.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
            if due {
                latest.1 = Some(Instant::now());
            }
            due
        };
        if publish {
            let p = &self.progress;
            let data = serde_json::json!({
                "id": self.job.id, "queue": p.queue, "kind": self.job.kind,
                "status": "running", "progress": value,
            });
            if let Some(t) = supplier_topic(&self.job) {
                p.hub.publish(t, "job", data.clone());
            }
            p.hub
                .publish(format!("jobs.{}.{}", p.queue, self.job.id), "job", data);
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when cancellation is asked for: `select!` on it in long waits.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    pub(crate) fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub(crate) fn progress_cell(&self) -> Arc<Progress> {
        self.progress.clone()
    }
}

/// The handlers of every queue, by kind.
#[derive(Clone, Default)]
pub struct JobKinds {
    by_queue: HashMap<Queue, HashMap<String, Arc<dyn JobHandler>>>,
}

impl JobKinds {
    pub fn register(&mut self, queue: Queue, kind: &str, handler: impl JobHandler) {
        self.by_queue
            .entry(queue)
            .or_default()
            .insert(kind.to_owned(), Arc::new(handler));
    }

    pub fn get(&self, queue: Queue, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.by_queue.get(&queue)?.get(kind).cloned()
    }

    pub fn kinds(&self, queue: Queue) -> Vec<String> {
        let mut k: Vec<String> = self
            .by_queue
            .get(&queue)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }
}

/// Wakes an idle worker of a queue when a job is enqueued on this instance, so that it does
/// not wait for its next poll. Jobs enqueued by another instance are found at the next poll.
#[derive(Clone, Default)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub(crate) async fn wait(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.0.notified()).await;
    }
}

/// Enqueues jobs on one queue from inside the service (the gate's own path, for job kinds that
/// start other jobs: an import queues its products' image fetches). It does not check that the
/// queue runs the kind: its callers name kinds they registered.
#[derive(Clone)]
pub struct Enqueuer {
    pub(crate) queue: pm_storage::jobs::JobQueue,
    pub(crate) hub: Hub,
    pub(crate) wakeup: Wakeup,
}

impl Enqueuer {
    pub fn new(queue: pm_storage::jobs::JobQueue, hub: Hub, wakeup: Wakeup) -> Self {
        Self { queue, hub, wakeup }
    }

    /// Stores the job, announces it and wakes an idle worker of this instance.
    pub async fn enqueue(&self, new: pm_storage::jobs::NewJob) -> Result<Job, pm_storage::StoreError> {
        let job = self.queue.enqueue(new).await?;
        publish_job(&self.hub, &job);
        self.wakeup.wake();
        Ok(job)
    }
}

/// The leases this instance's workers hold, so that a graceful stop can hand the jobs back
/// (queued at once, the attempt not counted) instead of leaving them until their leases expire.
/// Locked only to insert, remove or take the entries, never across an await.
#[derive(Clone, Default)]
pub struct HeldLeases(Arc<Mutex<HashMap<uuid::Uuid, (pm_storage::jobs::JobQueue, pm_storage::jobs::Lease)>>>);

impl HeldLeases {
    pub(crate) fn hold(&self, queue: &pm_storage::jobs::JobQueue, lease: &pm_storage::jobs::Lease) {
        self.0.lock().insert(lease.job.id, (queue.clone(), lease.clone()));
    }

    pub(crate) fn drop_job(&self, id: uuid::Uuid) {
        self.0.lock().remove(&id);
    }

    /// Hands every held job back; call after the workers stopped. Returns how many.
    pub async fn release_all(&self) -> usize {
        let held: Vec<_> = self.0.lock().drain().map(|(_, v)| v).collect();
        let mut n = 0;
        for (queue, lease) in held {
            match queue.release(&lease).await {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(job = %lease.job.id, error = %e, "job not handed back at shutdown"),
            }
        }
        n
    }
}

/// The JSON a job event carries (`jobs.<queue>` and `jobs.<queue>.<id>`).
pub fn job_event(job: &Job) -> Value {
    serde_json::json!({
        "id": job.id, "queue": job.queue, "kind": job.kind, "status": job.status,
        "attempts": job.attempts, "progress": job.progress, "result": job.result,
        "last_error": job.last_error, "created_by": job.created_by, "updated_at": job.updated_at,
    })
}

/// The topic of all import jobs of a supplier (`imports.supplier.<id>`), for an import job.
pub fn supplier_topic(job: &Job) -> Option<String> {
    if job.queue != Queue::Imports {
        return None;
    }
    let supplier = job.group_key.as_deref()?.strip_prefix("supplier:")?;
    Some(format!("imports.supplier.{supplier}"))
}

pub(crate) fn publish_job(hub: &Hub, job: &Job) {
    let data = job_event(job);
    if let Some(t) = supplier_topic(job) {
        hub.publish(t, "job", data.clone());
    }
    hub.publish(format!("jobs.{}.{}", job.queue, job.id), "job", data.clone());
    hub.publish(format!("jobs.{}", job.queue), "job", data);
}
