//! [`ActivityWriter`] (`activity.writer`): writes the activity log in batches from the bounded
//! [`ActivityQueue`] the change bus fills: waits for an entry, takes up to 500 queued ones,
//! writes them in one transaction through `store.analytics`, again. A failed batch is retried
//! three times, a second apart, then dropped and counted. At shutdown, [`drain`] writes what
//! is left.

use std::time::Duration;

use pm_storage::analytics::Activity;
use pm_supervisors::{Behaviour, Ctx, Handles, Mailbox, Reply};
use serde_json::json;

use crate::changes::ActivityQueue;
use crate::store::analytics::{AnalyticsStore, RecordActivities};

/// Entries written in one transaction at most.
pub const BATCH: usize = 500;
/// How long the writer waits for a first entry before looking again (and letting the drain in).
const WAIT: Duration = Duration::from_secs(1);
const RETRIES: u32 = 3;

pub struct ActivityWriter {
    queue: ActivityQueue,
    analytics: Mailbox<AnalyticsStore>,
    written: u64,
    batches: u64,
    failed: u64,
    last_error: Option<String>,
}

impl ActivityWriter {
    pub fn new(queue: ActivityQueue, analytics: Mailbox<AnalyticsStore>) -> Self {
        Self {
            queue,
            analytics,
            written: 0,
            batches: 0,
            failed: 0,
            last_error: None,
        }
    }

    fn next(&self, ctx: &Ctx<Self>) {
        let queue = self.queue.clone();
        ctx.pipe(async move { Batch(queue.next_batch(WAIT, BATCH).await, 0) });
    }

    fn write(&self, batch: Vec<Activity>, attempt: u32, ctx: &Ctx<Self>) {
        let analytics = self.analytics.clone();
        ctx.pipe(async move {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let r = analytics.send(RecordActivities(batch.clone())).await;
            Written(batch, attempt, r.map_err(|e| e.to_string()))
        });
    }
}

impl Behaviour for ActivityWriter {
    fn started(&mut self, ctx: &Ctx<Self>) -> Result<(), String> {
        self.next(ctx);
        Ok(())
    }

    fn observe(&self) -> serde_json::Value {
        json!({
            "queued": self.queue.len(), "written": self.written, "batches": self.batches,
            "failed": self.failed, "dropped_full": self.queue.dropped(), "last_error": self.last_error,
        })
    }
}

pub struct Batch(Vec<Activity>, u32);

impl Handles<Batch> for ActivityWriter {
    type Ok = ();
    type Err = String;

    fn handle(&mut self, msg: Batch, ctx: &Ctx<Self>) -> Reply<Result<(), String>> {
        if msg.0.is_empty() {
            self.next(ctx);
        } else {
            self.write(msg.0, msg.1, ctx);
        }
        Reply::ready(Ok(()))
    }
}

pub struct Written(Vec<Activity>, u32, Result<(), String>);

impl Handles<Written> for ActivityWriter {
    type Ok = ();
    type Err = String;

    fn handle(&mut self, msg: Written, ctx: &Ctx<Self>) -> Reply<Result<(), String>> {
        let Written(batch, attempt, r) = msg;
        match r {
            Ok(()) => {
                self.written += batch.len() as u64;
                self.batches += 1;
                metrics::counter!("pm_activity_written_total").increment(batch.len() as u64);
                self.next(ctx);
            }
            Err(e) if attempt < RETRIES => {
                tracing::warn!(error = %e, entries = batch.len(), attempt, "activity batch not written; retrying");
                self.last_error = Some(e);
                self.write(batch, attempt + 1, ctx);
            }
            Err(e) => {
                tracing::error!(error = %e, entries = batch.len(), "activity batch dropped after retries");
                metrics::counter!("pm_activity_dropped_total").increment(batch.len() as u64);
                self.failed += batch.len() as u64;
                self.last_error = Some(e);
                self.next(ctx);
            }
        }
        Reply::ready(Ok(()))
    }
}

/// Writes every entry still queued, at shutdown, after the writes have drained. Waits for the
/// writer to let go of the queue (at most its one-second wait).
pub async fn drain(queue: &ActivityQueue, analytics: &Mailbox<AnalyticsStore>) -> usize {
    let mut rx = queue.rx.lock().await;
    let mut left = Vec::new();
    while let Ok(a) = rx.try_recv() {
        left.push(a);
    }
    drop(rx);
    let n = left.len();
    for chunk in left.chunks(BATCH) {
        if let Err(e) = analytics.send(RecordActivities(chunk.to_vec())).await {
            tracing::error!(error = %e, entries = chunk.len(), "activity not written at shutdown");
            metrics::counter!("pm_activity_dropped_total").increment(chunk.len() as u64);
        }
    }
    n
}
