//! `debug.sleep`: a job kind for trying the job layer from outside (registered in every queue
//! when `jobs.debug_kinds` is on). Payload, all optional:
//!
//! - `ms` (1000): how long it runs, in `steps` (10) equal sleeps, reporting
//!   `{"done": n, "total": steps}` after each and stopping at once when cancelled;
//! - `fail_attempts` (0): attempts up to this number fail with a recoverable error;
//! - `fatal` (false): fail without retry; `panic` (false): panic in the handler.
//!
//! Its result says which attempt finished it: `{"attempt": n, "slept_ms": ms}`.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::{JobError, JobHandler, JobRun};

pub const KIND: &str = "debug.sleep";

pub struct DebugSleep;

impl JobHandler for DebugSleep {
    fn run(&self, run: JobRun) -> BoxFuture<'static, Result<Value, JobError>> {
        Box::pin(async move {
            let p = &run.job.payload;
            let ms = p["ms"].as_u64().unwrap_or(1000).min(3_600_000);
            let steps = p["steps"].as_u64().unwrap_or(10).clamp(1, 10_000);
            let attempt = run.job.attempts;
            for done in 1..=steps {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms / steps)) => {}
                    () = run.cancelled() => return Err(JobError::Cancelled),
                }
                run.progress(json!({ "done": done, "total": steps }));
            }
            if u64::from(attempt) <= p["fail_attempts"].as_u64().unwrap_or(0) {
                return Err(JobError::Retryable(format!("debug failure on attempt {attempt}")));
            }
            if p["fatal"].as_bool().unwrap_or(false) {
                return Err(JobError::Fatal("debug fatal failure".into()));
            }
            if p["panic"].as_bool().unwrap_or(false) {
                panic!("debug panic on attempt {attempt}");
            }
            Ok(json!({ "attempt": attempt, "slept_ms": ms }))
        })
    }
}
