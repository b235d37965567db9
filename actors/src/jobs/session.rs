//! [`ImportSession`] (`import.session.<supplier>`): one supplier's import session, a child of
//! the dynamic supervisor `import.session`, started on demand by the first import of that
//! supplier and stopped after `imports.session_idle_secs` without one.
//!
//! The imports queue's workers claim `import.file` jobs (one supplier's jobs one at a time, in
//! order: the job's group is the supplier; different suppliers in parallel, up to the queue's
//! workers) and hand each run to its supplier's session, which runs the pipeline
//! ([`super::import`]) as a piped future and keeps, as its own state, the job it is running, its
//! stage (`read`, `parse`, `write`, `finish`) and counters: what `/admin/actors` shows of it.
//!
//! `RunImport` is answered at once (accepted); the run's outcome goes back through the
//! message's own channel when the pipeline ends. So a long import is never an unanswered
//! message (which stuck detection would flag), and a crash of the session drops the channel:
//! the worker sees the run end and the job is retried, like any cut-off run.

use std::sync::Arc;
use std::time::Instant;

use pm_supervisors::{Behaviour, Ctx, Handles, Mailbox, Reply};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::import::ImportDeps;
use super::{JobError, JobRun};

/// The session of one supplier.
pub struct ImportSession {
    supplier: String,
    deps: Arc<ImportDeps>,
    current: Option<Current>,
    finished: u64,
    last: Option<Value>,
}

struct Current {
    job: Uuid,
    stage: &'static str,
    counters: Value,
    started: Instant,
    /// Where the run's outcome goes; dropped with the state if the session crashes.
    done: oneshot::Sender<Result<Value, JobError>>,
}

impl ImportSession {
    pub fn new(supplier: &str, deps: Arc<ImportDeps>) -> Self {
        Self {
            supplier: supplier.to_owned(),
            deps,
            current: None,
            finished: 0,
            last: None,
        }
    }
}

impl Behaviour for ImportSession {
    /// Not idle while a job runs (the idle timeout stops only sessions with nothing to do).
    fn busy(&self) -> bool {
        self.current.is_some()
    }

    fn observe(&self) -> Value {
        let current = self.current.as_ref().map(|c| {
            json!({
                "job": c.job,
                "stage": c.stage,
                "counters": c.counters,
                "running_secs": c.started.elapsed().as_secs(),
            })
        });
        json!({
            "supplier": self.supplier,
            "current": current,
            "finished": self.finished,
            "last": self.last,
        })
    }
}

/// Runs one import job of this session's supplier. Answered at once; the outcome comes
/// through `done`.
pub struct RunImport {
    pub run: JobRun,
    pub done: oneshot::Sender<Result<Value, JobError>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the session of supplier {0} is running another job")]
pub struct Busy(String);

impl Handles<RunImport> for ImportSession {
    type Ok = ();
    type Err = Busy;
    fn handle(&mut self, msg: RunImport, ctx: &Ctx<Self>) -> Reply<Result<(), Busy>> {
        if self.current.is_some() {
            return Reply::Ready(Err(Busy(self.supplier.clone())));
        }
        let job = msg.run.job.id;
        self.current = Some(Current {
            job,
            stage: "read",
            counters: Value::Null,
            started: Instant::now(),
            done: msg.done,
        });
        let deps = self.deps.clone();
        let me = ctx.mailbox();
        let report: super::import::StageFn = Arc::new(move |stage, counters| {
            let me = me.clone();
            // Best effort: a full mailbox loses a stage report, never the import.
            tokio::spawn(async move {
                let _ = me.try_send(Stage { job, stage, counters }).await;
            });
        });
        ctx.pipe(async move { Finished(super::import::run_import(msg.run, &deps, report).await) });
        Reply::Ready(Ok(()))
    }
}

/// A stage reached by the running job, with its counters.
pub struct Stage {
    pub job: Uuid,
    pub stage: &'static str,
    pub counters: Value,
}

impl Handles<Stage> for ImportSession {
    type Ok = ();
    type Err = std::convert::Infallible;
    fn handle(&mut self, msg: Stage, _ctx: &Ctx<Self>) -> Reply<Result<(), std::convert::Infallible>> {
        if let Some(c) = self.current.as_mut().filter(|c| c.job == msg.job) {
            c.stage = msg.stage;
            c.counters = msg.counters;
        }
        Reply::Ready(Ok(()))
    }
}

/// The pipeline's end (a piped future's result).
pub struct Finished(Result<Value, JobError>);

impl Handles<Finished> for ImportSession {
    type Ok = ();
    type Err = std::convert::Infallible;
    fn handle(&mut self, msg: Finished, _ctx: &Ctx<Self>) -> Reply<Result<(), std::convert::Infallible>> {
        if let Some(c) = self.current.take() {
            self.finished += 1;
            self.last = Some(json!({
                "job": c.job,
                "outcome": match &msg.0 { Ok(_) => "done".to_owned(), Err(e) => e.to_string() },
                "secs": c.started.elapsed().as_secs_f64(),
            }));
            // The worker may have gone (its lease lost): nothing to tell then.
            let _ = c.done.send(msg.0);
        }
        Reply::Ready(Ok(()))
    }
}

/// The dynamic supervisor of the sessions, as the import job kind uses it.
pub type Sessions = pm_supervisors::DynamicSupervisor<ImportSession>;

/// Hands a run to its supplier's session and waits for the outcome.
pub async fn run_in_session(sessions: &Sessions, supplier: &str, run: JobRun) -> Result<Value, JobError> {
    let session: Mailbox<ImportSession> = sessions
        .get_or_start(supplier)
        .map_err(|e| JobError::Retryable(format!("no import session for supplier {supplier}: {e}")))?;
    let (tx, rx) = oneshot::channel();
    session
        .send(RunImport { run, done: tx })
        .await
        .map_err(|e| JobError::Retryable(format!("import session of {supplier}: {e}")))?;
    rx.await.unwrap_or_else(|_| {
        Err(JobError::Retryable(format!(
            "the import session of {supplier} stopped mid-run"
        )))
    })
}
