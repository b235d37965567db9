//! [`JobWorker`] (`jobs.<queue>.worker.<n>`): runs one job at a time.
//!
//! ```text
//! idle ──Poll──▶ claiming ──Claimed(job)──▶ running ──Ran──▶ recording ──Recorded──▶ idle
//!   ▲                │ nothing due                │ Renew every lease/3 (progress stored,
//!   └── wait for a wakeup or the poll interval ◀──┘  cancellation learnt, loss of the lease)
//! ```
//!
//! Every database call is a piped future whose result comes back as a message, so the state
//! changes in the handlers, in order, and the worker stays responsive (to `/admin`, to its
//! renewal timer) while a job runs. A crash of the worker throws its piped futures away, the
//! job's run with them; the job's lease then expires and the job is claimed again, by this
//! worker or another, and finishes once: the old run can record nothing (fencing).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pm_storage::jobs::{FailOutcome, Job, JobQueue, JobStatus, Lease, LeaseState};
use pm_storage::StoreError;
use pm_supervisors::{Behaviour, Ctx, Handles, Mailbox, Reply, TimerId};
use serde_json::{json, Value};

use super::{publish_job, JobError, JobKinds, JobRun, Progress, Wakeup};
use crate::events::Hub;
use crate::store::core::{CoreStore, Notify};

/// What a worker needs, shared by the pool.
#[derive(Clone)]
pub struct WorkerDeps {
    pub queue: JobQueue,
    pub kinds: JobKinds,
    pub hub: Hub,
    pub wakeup: Wakeup,
    pub lease: Duration,
    pub poll: Duration,
    /// Where notifications of failed jobs go (to the user who created the job).
    pub core: Option<Mailbox<CoreStore>>,
    /// The leases held on this instance, handed back at a graceful stop.
    pub held: super::HeldLeases,
}

struct Running {
    lease: Lease,
    run: JobRun,
    progress: Arc<Progress>,
    task: TimerId,
    renew_timer: TimerId,
    renewing: bool,
    started: Instant,
}

enum State {
    Idle,
    Claiming,
    Running(Box<Running>),
    Recording { job: uuid::Uuid },
}

pub struct JobWorker {
    deps: WorkerDeps,
    state: State,
    finished: u64,
    /// Finished runs by outcome (`succeeded`, `retrying`, `failed`, ...).
    outcomes: std::collections::BTreeMap<&'static str, u64>,
    lost: u64,
    last_error: Option<String>,
}

impl JobWorker {
    pub fn new(deps: WorkerDeps) -> Self {
        Self {
            deps,
            state: State::Idle,
            finished: 0,
            outcomes: std::collections::BTreeMap::new(),
            lost: 0,
            last_error: None,
        }
    }

    fn queue_label(&self) -> &'static str {
        self.deps.queue.queue().as_str()
    }

    /// Waits for a wakeup or the poll interval, then polls.
    fn idle(&mut self, ctx: &Ctx<Self>) {
        self.state = State::Idle;
        let (wakeup, poll) = (self.deps.wakeup.clone(), self.deps.poll);
        ctx.pipe(async move {
            wakeup.wait(poll).await;
            Poll
        });
    }

    fn start(&mut self, lease: Lease, ctx: &Ctx<Self>) {
        let q = self.queue_label();
        let job = &lease.job;
        let waited = (self.deps.queue.now() - job.run_at).to_std().unwrap_or_default();
        metrics::histogram!("pm_job_wait_seconds", "queue" => q).record(waited.as_secs_f64());
        tracing::info!(queue = q, job = %job.id, kind = %job.kind, attempt = job.attempts, worker = ctx.name(), "job started");
        publish_job(&self.deps.hub, job);
        self.deps.held.hold(&self.deps.queue, &lease);
        let run = JobRun::new(job.clone(), self.deps.hub.clone());
        let handler = self.deps.kinds.get(job.queue, &job.kind);
        let kind = job.kind.clone();
        let r = run.clone();
        let task = ctx.pipe(async move {
            let Some(handler) = handler else {
                return Ran(Err(JobError::Fatal(format!("no handler for job kind {kind:?}"))));
            };
            // A panicking handler fails its job (retried like any failure), not the worker.
            match AssertUnwindSafe(handler.run(r)).catch_unwind().await {
                Ok(out) => Ran(out),
                Err(p) => Ran(Err(JobError::Retryable(format!(
                    "the job panicked: {}",
                    panic_text(p.as_ref())
                )))),
            }
        });
        let renew_timer = ctx.interval(self.deps.lease / 3, || Renew);
        self.state = State::Running(Box::new(Running {
            progress: run.progress_cell(),
            lease,
            run,
            task,
            renew_timer,
            renewing: false,
            started: Instant::now(),
        }));
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl Behaviour for JobWorker {
    fn started(&mut self, ctx: &Ctx<Self>) -> Result<(), String> {
        ctx.send_self(Poll);
        Ok(())
    }

    fn busy(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    fn observe(&self) -> Value {
        let (state, job) = match &self.state {
            State::Idle => ("idle", Value::Null),
            State::Claiming => ("claiming", Value::Null),
            State::Running(r) => (
                "running",
                json!({
                    "id": r.lease.job.id, "kind": r.lease.job.kind, "attempt": r.lease.job.attempts,
                    "running_ms": r.started.elapsed().as_millis() as u64,
                    "progress": r.progress.take(), "lease_owner": r.lease.owner,
                }),
            ),
            State::Recording { job } => ("recording", json!({ "id": job })),
        };
        json!({
            "queue": self.queue_label(), "state": state, "job": job,
            "finished": self.finished, "outcomes": self.outcomes, "lost_leases": self.lost,
            "last_error": self.last_error,
        })
    }
}

/// Look for a due job (sent by the wait, the start, and after each job).
#[derive(Debug)]
pub struct Poll;

impl Handles<Poll> for JobWorker {
    type Ok = ();
    type Err = String;

    fn handle(&mut self, _: Poll, ctx: &Ctx<Self>) -> Reply<Result<(), String>> {
        if matches!(self.state, State::Idle) {
            self.state = State::Claiming;
            let queue = self.deps.queue.clone();
            let (worker, lease) = (ctx.name().to_owned(), self.deps.lease);
            ctx.pipe(async move { Claimed(queue.claim(&worker, lease).await) });
        }
        Reply::ready(Ok(()))
    }
}

#[derive(Debug)]
pub struct Claimed(Result<Option<Lease>, StoreError>);

impl Handles<Claimed> for JobWorker {
    type Ok = ();
    type Err = String;

    fn handle(&mut self, msg: Claimed, ctx: &Ctx<Self>) -> Reply<Result<(), String>> {
        match msg.0 {
            Ok(Some(lease)) => self.start(lease, ctx),
            Ok(None) => self.idle(ctx),
            Err(e) => {
                tracing::warn!(queue = self.queue_label(), error = %e, "job claim failed");
                self.last_error = Some(e.to_string());
                self.idle(ctx);
            }
        }
        Reply::ready(Ok(()))
    }
}

/// Renew the lease of the running job (and store its progress).
#[derive(Debug)]
pub struct Renew;

impl Handles<Renew> for JobWorker {
    type Ok = ();
    type Err = String;

    fn handle(&mut self, _: Renew, ctx: &Ctx<Self>) -> Reply<Result<(), String>> {
        if let State::Running(r) = &mut self.state {
            if !r.renewing {
                r.renewing = true;
                let (queue, lease, d) = (self.deps.queue.clone(), r.lease.clone(), self.deps.lease);
                let progress = r.progress.take();
                ctx.pipe(
                    async move { Renewed(lease.job.id, queue.renew(&lease, d, progress.as_ref()).await) },
                );
            }
        }
        Reply::ready(Ok(()))
    }
}

#[derive(Debug)]
pub struct Renewed(uuid::Uuid, Result<LeaseState, StoreError>);

impl Handles<Renewed> for JobWorker {
    type Ok = ();
    type Err = String;

    fn handle(&mut self, msg: Renewed, ctx: &Ctx<Self>) -> Reply<Result<(), String>> {
        let State::Running(r) = &mut self.state else {
            return Reply::ready(Ok(()));
        };
        if r.lease.job.id != msg.0 {
            return Reply::ready(Ok(()));
        }
        r.renewing = false;
        match msg.1 {
            Ok(LeaseState::Held { cancel_requested }) => {
                if cancel_requested && !r.run.is_cancelled() {
                    tracing::info!(job = %r.lease.job.id, "job cancellation asked for");
                    r.run.cancel_token().cancel();
                }
            }
            Ok(LeaseState::Lost) => {
                // Taken over (our lease had expired) or closed: this run must stop, and may
                // record nothing.
                tracing::warn!(job = %r.lease.job.id, worker = ctx.name(), "job lease lost; run stopped");
                ctx.cancel(r.task);
                ctx.cancel(r.renew_timer);
                r.run.cancel_token().cancel();
                self.deps.held.drop_job(r.lease.job.id);
                self.lost += 1;
                metrics::counter!("pm_job_leases_lost_total", "queue" => self.queue_label()).increment(1);
                ctx.send_self(Poll);
                self.state = State::Idle;
            }
            Err(e) => {
                tracing::warn!(job = %r.lease.job.id, error = %e, "job lease renewal failed");
                self.last_error = Some(e.to_string());
            }
        }
        Reply::ready(Ok(()))
    }
}

/// The run's outcome.
pub struct Ran(Result<Value, JobError>);

impl Handles<Ran> for JobWorker {
    type Ok = ();
    type Err = String;

    fn handle(&mut self, msg: Ran, ctx: &Ctx<Self>) -> Reply<Result<(), String>> {
        let State::Running(r) = std::mem::replace(&mut self.state, State::Idle) else {
            return Reply::ready(Ok(()));
        };
        ctx.cancel(r.renew_timer);
        self.deps.held.drop_job(r.lease.job.id);
        let run_time = r.started.elapsed();
        self.state = State::Recording { job: r.lease.job.id };
        let (queue, core, hub) = (
            self.deps.queue.clone(),
            self.deps.core.clone(),
            self.deps.hub.clone(),
        );
        let lease = r.lease;
        // A run that did not succeed keeps its last progress (what a cancelled import wrote,
        // say): renewals store it only every lease/3, so it is stored once more now.
        let last_progress = match &msg.0 {
            Ok(_) => None,
            Err(_) => r.progress.take(),
        };
        let lease_len = self.deps.lease;
        ctx.pipe(async move {
            let id = lease.job.id;
            if let Some(p) = &last_progress {
                if let Err(e) = queue.renew(&lease, lease_len, Some(p)).await {
                    tracing::warn!(job = %id, error = %e, "last progress not stored");
                }
            }
            let outcome = match &msg.0 {
                Ok(result) => queue
                    .complete(&lease, result)
                    .await
                    .map(|ok| if ok { "succeeded" } else { "lost" }),
                Err(JobError::Waiting { details, .. }) => {
                    queue
                        .park(&lease, details)
                        .await
                        .map(|ok| if ok { "waiting" } else { "lost" })
                }
                Err(JobError::Cancelled) => {
                    queue
                        .finish_cancelled(&lease)
                        .await
                        .map(|ok| if ok { "cancelled" } else { "lost" })
                }
                Err(e) => {
                    let retryable = matches!(e, JobError::Retryable(_));
                    queue
                        .fail(&lease, &e.to_string(), retryable)
                        .await
                        .map(|o| match o {
                            FailOutcome::Retry { .. } => "retrying",
                            FailOutcome::Failed => "failed",
                            FailOutcome::Cancelled => "cancelled",
                            FailOutcome::Lost => "lost",
                        })
                }
            };
            let job = queue.find(id).await.ok().flatten();
            if let Some(job) = &job {
                if matches!(outcome, Ok(o) if o != "lost") {
                    publish_job(&hub, job);
                }
                if job.status == JobStatus::Failed && matches!(outcome, Ok("failed")) {
                    notify_failure(core, job).await;
                }
            }
            Recorded {
                id,
                outcome,
                run_time,
                error: msg.0.err().map(|e| e.to_string()),
            }
        });
        Reply::ready(Ok(()))
    }
}

async fn notify_failure(core: Option<Mailbox<CoreStore>>, job: &Job) {
    let (Some(core), Some(user)) = (core, job.created_by) else {
        return;
    };
    // The core store pushes it to the user live.
    let sent = core
        .send(Notify {
            user_id: user,
            kind: "job_failed".into(),
            title: format!("{} job failed", job.kind),
            body: job.last_error.clone(),
        })
        .await;
    if let Err(e) = sent {
        tracing::warn!(job = %job.id, error = %e, "could not notify a job failure");
    }
}

pub struct Recorded {
    id: uuid::Uuid,
    outcome: Result<&'static str, StoreError>,
    run_time: Duration,
    error: Option<String>,
}

impl Handles<Recorded> for JobWorker {
    type Ok = ();
    type Err = String;

    fn handle(&mut self, msg: Recorded, ctx: &Ctx<Self>) -> Reply<Result<(), String>> {
        let q = self.queue_label();
        match msg.outcome {
            Ok(outcome) => {
                tracing::info!(queue = q, job = %msg.id, outcome, error = msg.error.as_deref(), "job finished");
                metrics::counter!("pm_jobs_finished_total", "queue" => q, "outcome" => outcome).increment(1);
                metrics::histogram!("pm_job_run_seconds", "queue" => q, "outcome" => outcome)
                    .record(msg.run_time.as_secs_f64());
                self.finished += 1;
                *self.outcomes.entry(outcome).or_default() += 1;
            }
            Err(e) => {
                // The job keeps its lease until it expires, then runs again.
                tracing::error!(queue = q, job = %msg.id, error = %e, "could not record a job's outcome");
                self.last_error = Some(e.to_string());
            }
        }
        self.state = State::Idle;
        ctx.send_self(Poll);
        Reply::ready(Ok(()))
    }
}
