//! [`JobGate`] (`jobs.<queue>.queue`): the front of one queue. Enqueues (and wakes a worker),
//! reads, lists and cancels jobs. Stateless: its queries run concurrently, up to its
//! concurrency, on the queue database's pool.

use pm_storage::catalog::Page;
use pm_storage::jobs::{CancelOutcome, Job, JobFilter, JobQueue, NewJob, QueueDepth};
use pm_storage::StoreError;
use pm_supervisors::{Behaviour, Ctx, Handles, Reply};
use uuid::Uuid;

use super::{publish_job, Enqueuer, JobKinds, Wakeup};
use crate::events::Hub;

pub struct JobGate {
    queue: JobQueue,
    kinds: JobKinds,
    hub: Hub,
    wakeup: Wakeup,
    enqueuer: Enqueuer,
}

impl JobGate {
    pub fn new(enqueuer: Enqueuer, kinds: JobKinds) -> Self {
        Self {
            queue: enqueuer.queue.clone(),
            hub: enqueuer.hub.clone(),
            wakeup: enqueuer.wakeup.clone(),
            kinds,
            enqueuer,
        }
    }
}

impl Behaviour for JobGate {
    fn observe(&self) -> serde_json::Value {
        serde_json::json!({
            "queue": self.queue.queue(),
            "kinds": self.kinds.kinds(self.queue.queue()),
            "backend": self.queue.backend(),
        })
    }
}

/// Enqueues a job of a kind this queue has a handler for.
#[derive(Debug)]
pub struct EnqueueJob(pub NewJob);

impl Handles<EnqueueJob> for JobGate {
    type Ok = Job;
    type Err = StoreError;

    fn handle(&mut self, msg: EnqueueJob, _ctx: &Ctx<Self>) -> Reply<Result<Job, StoreError>> {
        let q = self.queue.queue();
        if self.kinds.get(q, &msg.0.kind).is_none() {
            let known = self.kinds.kinds(q).join(", ");
            return Reply::ready(Err(StoreError::Invalid {
                field: "kind",
                reason: format!("queue {q} runs no job of kind {:?} (known: {known})", msg.0.kind),
            }));
        }
        let enqueuer = self.enqueuer.clone();
        Reply::spawn(async move { enqueuer.enqueue(msg.0).await })
    }

    fn is_failure(err: &StoreError) -> bool {
        !err.is_callers()
    }
}

#[derive(Debug)]
pub struct GetJob(pub Uuid);

impl Handles<GetJob> for JobGate {
    type Ok = Job;
    type Err = StoreError;

    fn handle(&mut self, msg: GetJob, _ctx: &Ctx<Self>) -> Reply<Result<Job, StoreError>> {
        let queue = self.queue.clone();
        Reply::spawn(async move { queue.get(msg.0).await })
    }

    fn is_failure(err: &StoreError) -> bool {
        !err.is_callers()
    }
}

#[derive(Debug)]
pub struct ListJobs(pub JobFilter);

impl Handles<ListJobs> for JobGate {
    type Ok = Page<Job>;
    type Err = StoreError;

    fn handle(&mut self, msg: ListJobs, _ctx: &Ctx<Self>) -> Reply<Result<Page<Job>, StoreError>> {
        let queue = self.queue.clone();
        Reply::spawn(async move { queue.list(&msg.0).await })
    }

    fn is_failure(err: &StoreError) -> bool {
        !err.is_callers()
    }
}

/// Cancels a job: at once if it waits, at its worker's next lease renewal if it runs.
#[derive(Debug)]
pub struct CancelJob(pub Uuid);

impl Handles<CancelJob> for JobGate {
    type Ok = (CancelOutcome, Job);
    type Err = StoreError;

    fn handle(
        &mut self,
        msg: CancelJob,
        _ctx: &Ctx<Self>,
    ) -> Reply<Result<(CancelOutcome, Job), StoreError>> {
        let (queue, hub) = (self.queue.clone(), self.hub.clone());
        Reply::spawn(async move {
            let (outcome, job) = queue.cancel(msg.0).await?;
            if outcome != CancelOutcome::AlreadyFinished {
                publish_job(&hub, &job);
            }
            Ok((outcome, job))
        })
    }

    fn is_failure(err: &StoreError) -> bool {
        !err.is_callers()
    }
}

/// The queue's depth, for `/metrics`.
#[derive(Debug)]
pub struct QueueDepthOf;

impl Handles<QueueDepthOf> for JobGate {
    type Ok = QueueDepth;
    type Err = StoreError;

    fn handle(&mut self, _: QueueDepthOf, _ctx: &Ctx<Self>) -> Reply<Result<QueueDepth, StoreError>> {
        let queue = self.queue.clone();
        Reply::spawn(async move { queue.depth().await })
    }
}

/// Gives a job waiting for input its new payload and makes it due
/// ([`pm_storage::jobs::JobQueue::resume`]); `false` when it was not waiting any more.
pub struct ResumeJob {
    pub job: Job,
    pub payload: serde_json::Value,
}

impl Handles<ResumeJob> for JobGate {
    type Ok = bool;
    type Err = StoreError;

    fn handle(&mut self, msg: ResumeJob, _ctx: &Ctx<Self>) -> Reply<Result<bool, StoreError>> {
        let (queue, wakeup) = (self.queue.clone(), self.wakeup.clone());
        Reply::spawn(async move {
            let resumed = queue.resume(&msg.job, &msg.payload).await?;
            if resumed {
                wakeup.wake();
            }
            Ok(resumed)
        })
    }

    fn is_failure(err: &StoreError) -> bool {
        !err.is_callers()
    }
}
