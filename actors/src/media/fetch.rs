//! The `media.fetch` job kind (media queue): the image URLs of an import's rows.
//!
//! An import queues one job per written batch that named image URLs (only the URLs its
//! products do not have yet: a re-import queues nothing). The job fetches them, a few products
//! at a time and each product's URLs in the file's order (its first image becomes its main one
//! when it had none), and adds each through [`MediaDeps::add_original`], which stores the
//! original once and queues its thumbnails. An URL already fetched for the product is skipped,
//! so a rerun (a retry, a crash) picks up where the last one stopped.
//!
//! A URL that answers 404, is too large, is not an image or is refused by the outbound rule
//! fails for good: the import's log says which line and why (on the first attempt; a retry
//! meets the same ones again). No answer, a timeout, a 5xx, or the object store failing are
//! retried with the job layer's backoff; the last attempt logs them too.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::StreamExt;
use pm_storage::imports::Imports;
use pm_storage::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{AddError, MediaDeps};
use crate::jobs::{JobError, JobHandler, JobRun};

pub const KIND: &str = "media.fetch";

/// Products whose URLs are fetched at once. Fetching waits on the network, not the CPU; the
/// bound keeps one import from holding many connections to a supplier's image server.
const PRODUCTS_AT_ONCE: usize = 4;

/// Failures written to the import's log per attempt at most (the count of the rest follows).
const MAX_LOGGED: usize = 50;

/// What a fetch job fetches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// The import whose rows named the URLs: its log gets the failures.
    pub import_job: Option<Uuid>,
    pub products: Vec<ProductUrls>,
}

/// A product's image URLs, in the file's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductUrls {
    pub product_id: Uuid,
    /// The row of the file that named them.
    pub line: u64,
    pub urls: Vec<String>,
}

/// The kind: fetches through the shared [`MediaDeps`], logs to the imports database.
pub struct FetchImages {
    pub media: Arc<MediaDeps>,
    pub imports: Imports,
}

impl JobHandler for FetchImages {
    fn run(&self, run: JobRun) -> BoxFuture<'static, Result<Value, JobError>> {
        let (media, imports) = (self.media.clone(), self.imports.clone());
        Box::pin(async move { run_job(run, &media, &imports).await })
    }
}

/// One URL that was not added, and whether it is worth another attempt.
struct Failure {
    line: u64,
    url: String,
    reason: String,
    transient: bool,
}

#[derive(Default)]
struct Outcome {
    added: u64,
    existing: u64,
    failures: Vec<Failure>,
}

async fn run_job(run: JobRun, d: &MediaDeps, imports: &Imports) -> Result<Value, JobError> {
    let p: Payload = serde_json::from_value(run.job.payload.clone())
        .map_err(|e| JobError::Fatal(format!("bad payload: {e}")))?;
    let ids: Vec<Uuid> = p.products.iter().map(|x| x.product_id).collect();
    let known = d
        .store
        .source_urls(&ids)
        .await
        .map_err(|e| JobError::Retryable(format!("media database: {e}")))?;
    let total: usize = p.products.iter().map(|x| x.urls.len()).sum();
    let by = run.job.created_by;
    let mut done = 0usize;
    let mut out = Outcome::default();
    let mut products = futures::stream::iter(p.products)
        .map(|item| product(d, item, &known, by))
        .buffer_unordered(PRODUCTS_AT_ONCE);
    while let Some(o) = products.next().await {
        done += (o.added + o.existing) as usize + o.failures.len();
        out.added += o.added;
        out.existing += o.existing;
        out.failures.extend(o.failures);
        run.progress(json!({ "urls": total, "done": done, "added": out.added }));
        if run.is_cancelled() {
            return Err(JobError::Cancelled);
        }
    }
    drop(products);

    let last_attempt = run.job.attempts >= run.job.max_attempts;
    let transient = out.failures.iter().filter(|f| f.transient).count();
    if let Some(import) = p.import_job {
        // Failures for good are the same at every attempt: said once. The transient ones only
        // when no attempt is left.
        let to_log: Vec<&Failure> = out
            .failures
            .iter()
            .filter(|f| (!f.transient && run.job.attempts <= 1) || (f.transient && last_attempt))
            .collect();
        for f in to_log.iter().take(MAX_LOGGED) {
            let msg = format!("line {}: image {} not added: {}", f.line, f.url, f.reason);
            let details = json!({ "line": f.line, "url": f.url, "reason": f.reason });
            if let Err(e) = imports.log(import, "warn", &msg, Some(&details)).await {
                tracing::warn!(job = %import, error = %e, "import log not written");
            }
        }
        if to_log.len() > MAX_LOGGED {
            let msg = format!("{} more image urls not added", to_log.len() - MAX_LOGGED);
            let _ = imports.log(import, "warn", &msg, None).await;
        }
    }
    let failed: Vec<Value> = out
        .failures
        .iter()
        .take(MAX_LOGGED)
        .map(|f| json!({ "line": f.line, "url": f.url, "reason": f.reason, "transient": f.transient }))
        .collect();
    if transient > 0 && !last_attempt {
        let first = out
            .failures
            .iter()
            .find(|f| f.transient)
            .map(|f| f.reason.as_str());
        return Err(JobError::Retryable(format!(
            "{transient} image urls could not be fetched now ({}); {} added",
            first.unwrap_or("?"),
            out.added
        )));
    }
    Ok(json!({
        "urls": total,
        "added": out.added,
        "existing": out.existing,
        "failed": out.failures.len(),
        "failures": failed,
    }))
}

/// One product's URLs, in order.
async fn product(
    d: &MediaDeps,
    item: ProductUrls,
    known: &HashSet<(Uuid, String)>,
    by: Option<Uuid>,
) -> Outcome {
    let mut o = Outcome::default();
    let mut urls = item.urls.into_iter();
    while let Some(raw) = urls.next() {
        if known.contains(&(item.product_id, raw.clone())) {
            o.existing += 1;
            continue;
        }
        let fail = |reason: String, transient: bool| Failure {
            line: item.line,
            url: raw.clone(),
            reason,
            transient,
        };
        let url = match url::Url::parse(&raw) {
            Ok(u) => u,
            Err(e) => {
                o.failures.push(fail(format!("not a url: {e}"), false));
                continue;
            }
        };
        let bytes = match d.fetch(&url).await {
            Ok(b) => b,
            Err(e) => {
                o.failures.push(fail(e.to_string(), e.is_transient()));
                continue;
            }
        };
        match d
            .add_original(item.product_id, bytes, Some(raw.clone()), by)
            .await
        {
            Ok(a) if a.created => o.added += 1,
            // The same bytes under another URL.
            Ok(_) => o.existing += 1,
            Err(AddError::Store(StoreError::Refused { reason, .. })) => {
                // The product has its most images: the rest of its URLs cannot be added either.
                o.failures.push(fail(reason.clone(), false));
                for rest in urls.by_ref() {
                    o.failures.push(Failure {
                        line: item.line,
                        url: rest,
                        reason: reason.clone(),
                        transient: false,
                    });
                }
            }
            Err(e) => o.failures.push(fail(e.to_string(), e.is_transient())),
        }
    }
    o
}
