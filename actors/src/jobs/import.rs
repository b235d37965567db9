//! `import.file` (imports queue): one supplier file already in object storage into the
//! catalog. The worker that claims the job hands it to the supplier's session
//! ([`super::session`]), which runs [`run_import`].
//!
//! Payload: `{"supplier_id": uuid, "bucket": "imports", "key": "2026/12/04/….csv",
//! "file_name", "encoding", "delimiter", "skip_rows", "header_line", "sheet", "dry_run", "mode": "delta" |
//! "full", "max_errors": n, "template_id": uuid, "template": {…}, "mapping": {"<header>": field}}`.
//!
//! Stages: `read` (the object, bounded by `MAX_FILE_BYTES`), `parse` (decode, sniff, map and
//! validate on the blocking pool, [`pm_imports`]), `write` (batches of [`BATCH`] rows through a
//! channel of [`IN_FLIGHT`], so a slow database slows the parser instead of filling memory;
//! each batch is one transaction on the catalog's bulk lane: products, prices, stock, offers,
//! and the journal a rollback reads), `finish` (a full import's missing offers to stock 0, the
//! day's statistics). Rejected rows go to `import_errors` with their line. When the columns
//! cannot be mapped with confidence and no template or mapping was given, the job waits for
//! one (`awaiting_mapping`) instead of failing. A rerun (after a crash or a retry) clears the
//! job's rejects and writes again: committed batches are found unchanged, nothing is
//! duplicated.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Cursor, Read as _};
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::TryStreamExt;
use pm_domain::Money;
use pm_imports::mapping::Target as Field;
use pm_imports::rows::{CsvRows, FileError, ProductRow, ReadOptions, RowError};
use pm_imports::sheets::{SheetRef, SheetRows};
use pm_imports::template::Template;
use pm_storage::catalog::{ImportOffer, ImportOutcome, NewProduct, PriceType, UpsertResult};
use pm_storage::imports::{Imports, NewImportError};
use pm_storage::object_store::ObjectStore;
use pm_supervisors::Mailbox;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{JobError, JobHandler, JobRun};
use crate::changes::{By, Origin};
use crate::store::catalog::{CatalogStore, IdsBySku, ImportBatch, MarkMissing};
use crate::store::catalog_entities::GetSupplier;

/// The hasher of the per-row sets and maps of a batch (the file's own keys, not an attacker's
/// choice of collisions worth SipHash's cost, which showed in the profile).
type FastHash = foldhash::fast::RandomState;

pub const KIND: &str = "import.file";

/// Rows a dry run shows as they would be written.
const SAMPLE: usize = 10;
/// Rows per bulk upsert (the catalog's batch limit).
pub const BATCH: usize = 1000;
/// Parsed batches waiting for the writer at most: the parser blocks beyond.
const IN_FLIGHT: usize = 2;
/// The largest file read (the upload limit is checked before; this guards the job itself).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// What an import needs, shared by the sessions.
pub struct ImportDeps {
    pub catalog: Mailbox<CatalogStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub imports: Imports,
    /// Where the notice of an import that ended with rejects goes (to whoever started it; a
    /// failed job is notified by the worker).
    pub core: Mailbox<crate::store::core::CoreStore>,
    /// Where the rows' image URLs go (`media.fetch` jobs).
    pub media: Arc<crate::media::MediaDeps>,
    /// Fetches URL sources (one client: its connection pool is shared).
    pub http: reqwest::Client,
    /// The largest file fetched (the upload limit).
    pub max_bytes: u64,
    pub fetch_timeout: std::time::Duration,
    /// An import's batches written at once at most (`imports.batches_in_flight`).
    pub batches_in_flight: usize,
}

/// Fetches `url` into `bucket/key`: at most `deps.max_bytes`, within `deps.fetch_timeout`.
/// No answer, a timeout, a 5xx or a 429 are worth another attempt (the job layer's backoff);
/// any other 4xx, an oversized body or a URL that is not HTTP(S) are not.
async fn fetch(deps: &ImportDeps, url: &str, bucket: &str, key: &str) -> Result<(), JobError> {
    let parsed = url::Url::parse(url).map_err(|e| fatal(format!("the url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(fatal(format!("the url {url:?} is not http or https")));
    }
    let resp = deps
        .http
        .get(parsed)
        .timeout(deps.fetch_timeout)
        .send()
        .await
        .map_err(|e| retry(format!("fetching {url}: {}", crate::outbound::error_chain(&e))))?;
    let status = resp.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(retry(format!("fetching {url}: the server answered {status}")));
    }
    if !status.is_success() {
        return Err(fatal(format!("fetching {url}: the server answered {status}")));
    }
    let max = deps.max_bytes;
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(fatal(format!(
            "fetching {url}: the file has {} bytes; at most {max} are imported",
            resp.content_length().unwrap_or_default()
        )));
    }
    // The body goes to the store as it arrives, bounded.
    let (tx, rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let body: pm_storage::object_store::ByteStream =
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
    let put = deps.objects.put(bucket, key, body, None);
    let pump = async move {
        let mut resp = resp;
        let mut size = 0u64;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    size += chunk.len() as u64;
                    if size > max {
                        let _ = tx.send(Err(std::io::Error::other("too large"))).await;
                        return Err(fatal(format!(
                            "fetching {url}: the file is larger than {max} bytes"
                        )));
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other("fetch interrupted"))).await;
                    return Err(retry(format!(
                        "fetching {url}: {}",
                        crate::outbound::error_chain(&e)
                    )));
                }
            }
        }
    };
    let (put, pump) = tokio::join!(put, pump);
    pump?;
    put.map_err(retry)?;
    Ok(())
}

/// The extension of a URL's last path segment when it is a plain one, else `bin`.
fn url_extension(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let last = u.path_segments()?.next_back()?.to_owned();
            let (_, ext) = last.rsplit_once('.')?;
            Some(ext.to_ascii_lowercase())
        })
        .filter(|e| !e.is_empty() && e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "bin".into())
}

/// Appends to the job's log (`import_logs`); a log that cannot be written is not worth
/// failing the import for.
async fn note(imports: &Imports, job: Uuid, level: &str, message: &str, details: Option<&Value>) {
    if let Err(e) = imports.log(job, level, message, details).await {
        tracing::warn!(job = %job, error = %e, "import log not written");
    }
}

/// How a running import tells its session its stage and counters.
pub type StageFn = Arc<dyn Fn(&'static str, Value) + Send + Sync>;

/// The `import.file` kind: the run goes to its supplier's session.
pub struct ImportFile {
    pub sessions: super::session::Sessions,
}

/// What the parser sends the writer.
enum Parsed {
    Info(Value),
    Batch(Vec<ProductRow>, Vec<RowError>),
}

#[derive(Default, serde::Serialize)]
struct Counters {
    rows_read: u64,
    /// Rows that passed validation (what a dry run would write).
    valid: u64,
    /// Valid rows a later row of the same batch with the same EAN (or SKU) replaced: the last
    /// one wins, and the earlier is not written, so a second run of the file changes nothing.
    superseded: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    rejected: u64,
    prices_changed: u64,
    stocks_changed: u64,
    /// Supplier offers (the supplier's SKU, cost and stock) created or changed.
    offers_changed: u64,
    /// A dry run's forecast: valid rows whose key no live product has, those it has, and
    /// those among them the import would find unchanged (nothing written).
    would_create: u64,
    would_update: u64,
    would_be_unchanged: u64,
    /// Image URLs of written rows that their products did not have yet, queued for fetching
    /// (`media.fetch` jobs on the media queue; their failures go to this job's log).
    images_queued: u64,
}

impl JobHandler for ImportFile {
    fn run(&self, run: JobRun) -> BoxFuture<'static, Result<Value, JobError>> {
        let sessions = self.sessions.clone();
        Box::pin(async move {
            let supplier = run.job.payload["supplier_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .ok_or_else(|| fatal("payload: supplier_id (a uuid) is required"))?;
            super::session::run_in_session(&sessions, &supplier.to_string(), run).await
        })
    }
}

/// Runs one import (in its supplier's session): the pipeline, then the notice to whoever
/// started it when rows were rejected, and the day's statistics.
pub async fn run_import(run: JobRun, deps: &ImportDeps, stage: StageFn) -> Result<Value, JobError> {
    let (job_id, user, name) = (
        run.job.id,
        run.job.created_by,
        run.job.payload["file_name"].as_str().map(str::to_owned),
    );
    let supplier_id = run.job.payload["supplier_id"]
        .as_str()
        .and_then(|s| s.parse::<Uuid>().ok());
    let started = Instant::now();
    let outcome = import(run, deps, stage).await;
    match &outcome {
        Ok(r) => {
            let c = &r["counters"];
            let msg = format!(
                "finished: {} rows read, {} created, {} updated, {} unchanged, {} rejected{}",
                c["rows_read"],
                c["created"],
                c["updated"],
                c["unchanged"],
                c["rejected"],
                if r["dry_run"] == json!(true) {
                    " (dry run: nothing written)"
                } else {
                    ""
                }
            );
            note(&deps.imports, job_id, "info", &msg, Some(r)).await;
        }
        Err(JobError::Waiting { reason, details }) => {
            note(&deps.imports, job_id, "warn", reason, Some(details)).await;
        }
        Err(JobError::Cancelled) => note(&deps.imports, job_id, "warn", "cancelled", None).await,
        Err(e @ JobError::Retryable(_)) => {
            note(
                &deps.imports,
                job_id,
                "error",
                &format!("{e} (to be retried)"),
                None,
            )
            .await;
        }
        Err(e) => note(&deps.imports, job_id, "error", &e.to_string(), None).await,
    }
    if let Some(supplier_id) = supplier_id {
        let counters = outcome.as_ref().ok().map(|r| r["counters"].clone());
        let dry = outcome.as_ref().ok().is_some_and(|r| r["dry_run"] == json!(true));
        let waiting = matches!(outcome, Err(JobError::Waiting { .. }) | Err(JobError::Cancelled));
        if !dry && !waiting {
            let n = |k: &str| counters.as_ref().and_then(|c| c[k].as_i64()).unwrap_or(0);
            let stats = pm_storage::imports::ImportStatistics {
                supplier_id,
                day: chrono::Utc::now().format("%Y-%m-%d").to_string(),
                jobs: 1,
                failed_jobs: i64::from(outcome.is_err()),
                rows_read: n("rows_read"),
                created: n("created"),
                updated: n("updated"),
                unchanged: n("unchanged"),
                rejected: n("rejected"),
                duration_ms: started.elapsed().as_millis() as i64,
            };
            if let Err(e) = deps.imports.add_statistics(&stats).await {
                tracing::warn!(job = %job_id, error = %e, "import statistics not recorded");
            }
        }
    }
    let result = outcome?;
    let rejected = result["counters"]["rejected"].as_u64().unwrap_or(0);
    if let (Some(user_id), true) = (user, rejected > 0) {
        let file = name.unwrap_or_else(|| "a file".into());
        let notice = crate::store::core::Notify {
            user_id,
            kind: "import_rejects".into(),
            title: format!("import of {file} ended with {rejected} rejected rows"),
            body: Some(format!("/api/v1/imports/jobs/{job_id}/errors")),
        };
        if let Err(e) = deps.core.send(notice).await {
            tracing::warn!(job = %job_id, error = %e, "import notice not sent");
        }
    }
    Ok(result)
}

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::Fatal(e.to_string())
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retryable(e.to_string())
}

async fn import(run: JobRun, deps: &ImportDeps, stage: StageFn) -> Result<Value, JobError> {
    let (catalog, objects, imports) = (&deps.catalog, &deps.objects, &deps.imports);
    let started = Instant::now();
    let job_id = run.job.id;
    let p = run.job.payload.clone();
    let supplier_id: Uuid = p["supplier_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fatal("payload: supplier_id (a uuid) is required"))?;
    let bucket = p["bucket"].as_str().unwrap_or("imports").to_owned();
    let url = p["url"].as_str().map(str::to_owned);
    let key = match (&url, p["key"].as_str()) {
        (_, Some(k)) => k.to_owned(),
        // A URL source: fetched into the imports bucket under the job's id (a rerun fetches
        // again and replaces it), then read like an upload.
        (Some(url), None) => {
            stage("fetch", json!({ "url": url }));
            let key = format!(
                "{}/{job_id}.{}",
                chrono::Utc::now().format("%Y/%m/%d"),
                url_extension(url)
            );
            fetch(deps, url, &bucket, &key).await?;
            key
        }
        (None, None) => return Err(fatal("payload: key or url is required")),
    };
    let dry_run = p["dry_run"].as_bool().unwrap_or(false);
    let full = p["mode"].as_str() == Some("full");
    // Stop after this many rejected rows (the error policy); none: skip bad rows, go on.
    let max_errors = p["max_errors"].as_u64();
    let template = match (&p["template_id"], &p["template"]) {
        (_, t @ Value::Object(_)) => Some(template_of(t)?),
        (Value::String(id), _) => {
            let id: Uuid = id
                .parse()
                .map_err(|_| fatal("payload: template_id must be a uuid"))?;
            let stored = match imports.template(id).await {
                Ok(t) => t,
                Err(e) if e.is_callers() => return Err(fatal(e)),
                Err(e) => return Err(retry(e)),
            };
            Some(template_of(&stored.template)?)
        }
        _ => None,
    };
    let supplier = match catalog.send(GetSupplier { id: supplier_id }).await {
        Ok(s) => s,
        Err(pm_supervisors::CallError::Handler(e)) if e.is_callers() => return Err(fatal(e)),
        Err(e) => return Err(retry(e)),
    };
    let options = ReadOptions {
        encoding: p["encoding"].as_str().map(str::to_owned),
        delimiter: p["delimiter"].as_str().and_then(|d| match d {
            "tab" | "\t" => Some(b'\t'),
            ";" | "," | "|" => d.bytes().next(),
            _ => None,
        }),
        skip_rows: p["skip_rows"].as_u64().unwrap_or(0).min(1000) as usize,
        header_line: p["header_line"].as_u64().filter(|n| (1..=1000).contains(n)),
        mapping: None,
        named_mapping: named_mapping(&p["mapping"])?,
        template,
        currency: Some(supplier.default_currency),
        decimal_mark: Default::default(),
    };
    let sheet = match &p["sheet"] {
        Value::String(s) => Some(SheetRef::Name(s.clone())),
        Value::Number(n) => n.as_u64().map(|i| SheetRef::Index(i as usize)),
        _ => None,
    };

    // The file, bounded.
    stage("read", Value::Null);
    let (meta, stream) = objects.get(&bucket, &key).await.map_err(|e| match e {
        pm_storage::object_store::ObjectError::NotFound { .. } => fatal(format!("no file {bucket}/{key}")),
        other => retry(other),
    })?;
    if meta.size > MAX_FILE_BYTES {
        return Err(fatal(format!(
            "the file has {} bytes; at most {MAX_FILE_BYTES} are imported",
            meta.size
        )));
    }
    // A spreadsheet (a zip or an OLE file) is read whole: its format needs to seek. A text
    // file streams from the store through the parser, so memory stays flat whatever its size.
    let mut stream = stream;
    let mut head: Vec<u8> = Vec::new();
    while head.len() < 8 {
        match stream.try_next().await.map_err(retry)? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => break,
        }
    }
    let spreadsheet = matches!(
        head.get(..4),
        Some([0x50, 0x4B, 0x03, 0x04] | [0xD0, 0xCF, 0x11, 0xE0])
    );
    let input = if spreadsheet {
        let mut bytes = Vec::with_capacity(meta.size as usize);
        bytes.extend_from_slice(&head);
        while let Some(chunk) = stream.try_next().await.map_err(retry)? {
            bytes.extend_from_slice(&chunk);
        }
        Input::Sheet(bytes)
    } else {
        let rest = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        Input::Text(Box::new(Cursor::new(head).chain(rest)))
    };

    // A rerun of this job records its rejects afresh (a dry run's too: they are its report).
    imports.clear_errors(job_id).await.map_err(retry)?;
    if let Err(e) = imports.ensure_log_partitions(chrono::Utc::now()).await {
        tracing::warn!(job = %job_id, error = %e, "import log partitions not checked");
    }
    note(
        imports,
        job_id,
        "info",
        &format!(
            "attempt {} started: {} ({} bytes)",
            run.job.attempts,
            p["file_name"].as_str().or(url.as_deref()).unwrap_or(&key),
            meta.size
        ),
        None,
    )
    .await;
    let (tx, mut rx) = mpsc::channel::<Result<Parsed, FileError>>(IN_FLIGHT);
    // Parsing is CPU work: on the blocking pool, never on the async workers.
    let parser = tokio::task::spawn_blocking(move || parse(input, sheet, options, tx));
    stage("parse", Value::Null);

    // A dry run's first valid rows, as they would be written.
    let mut sample: Vec<Value> = Vec::new();
    let mut info = Value::Null;
    let origin = Origin::system("import");
    let mut w = Writer {
        deps,
        run: &run,
        stage: &stage,
        origin: origin.clone(),
        job_id,
        dry_run,
        max_errors,
        c: Counters::default(),
        next_analyze: 10_000,
        in_flight: VecDeque::new(),
        max_in_flight: deps.batches_in_flight.max(1),
        stopping: false,
    };
    let mut categories = Categories {
        catalog,
        origin: origin.clone(),
        known: HashMap::default(),
    };
    // The writer's end: an error stops the parser (it sees the channel closed) before the job
    // answers, so no row is read for nothing.
    let written: Result<(), JobError> = async {
        while let Some(msg) = rx.recv().await {
            if run.is_cancelled() {
                // The batches in flight land anyway: settled below, like any stop.
                return Err(JobError::Cancelled);
            }
            let (rows, rejects) = match msg {
                // Columns nobody could map with confidence: the job waits for a mapping (given
                // through the API, or a template) instead of rejecting every row.
                Err(FileError::MappingNeeded { missing, headers }) => {
                    let reason = format!(
                        "awaiting a mapping: no confident column for {}",
                        missing.join(", ")
                    );
                    return Err(JobError::Waiting {
                        reason: reason.clone(),
                        details: json!({
                            "awaiting": "mapping",
                            "message": reason,
                            "missing": missing,
                            "headers": headers,
                            "file": info,
                        }),
                    });
                }
                Err(e) => return Err(fatal(e)),
                Ok(Parsed::Info(i)) => {
                    info = i;
                    record_file(
                        &w,
                        &p,
                        &info,
                        supplier_id,
                        &bucket,
                        &key,
                        meta.size,
                        url.as_deref(),
                    )
                    .await;
                    continue;
                }
                Ok(Parsed::Batch(rows, rejects)) => (rows, rejects),
            };
            let read = Read {
                rows: (rows.len() + rejects.len()) as u64,
                superseded: 0,
            };
            let errors: Vec<NewImportError> = rejects.into_iter().map(reject).collect();
            let before = rows.len();
            let rows = last_of_each_key(rows);
            let read = Read {
                superseded: (before - rows.len()) as u64,
                ..read
            };
            if !dry_run {
                let mut errors = errors;
                let category_ids = categories.resolve(&rows, &mut errors).await?;
                let (mut rows, tails): (Vec<_>, Vec<_>) = rows.into_iter().map(into_import_row).unzip();
                for (row, id) in rows.iter_mut().zip(category_ids) {
                    row.product.primary_category_id = id;
                }
                let batch = pm_storage::catalog::ImportBatch {
                    job_id,
                    supplier_id,
                    warehouse: supplier.code.clone(),
                    rows,
                    full,
                };
                w.send(batch, read, tails, errors).await?;
                continue;
            }
            w.c.count_read(read, rows.len());
            if !rows.is_empty() {
                // A dry run validates and forecasts; nothing is written.
                w.c.valid += rows.len() as u64;
                let same = catalog
                    .send(crate::store::catalog::UnchangedImportRows {
                        supplier_id,
                        warehouse: supplier.code.clone(),
                        rows: rows.iter().map(import_row).collect(),
                    })
                    .await
                    .map_err(retry)?;
                w.c.would_be_unchanged += same.iter().filter(|u| **u).count() as u64;
                let rows: Vec<&ProductRow> = rows
                    .iter()
                    .zip(&same)
                    .filter(|(_, u)| !**u)
                    .map(|(r, _)| r)
                    .collect();
                let eans: Vec<String> = rows
                    .iter()
                    .filter_map(|r| r.ean.map(|e| e.as_str().to_owned()))
                    .collect();
                let skus: Vec<String> = rows
                    .iter()
                    .filter(|r| r.ean.is_none())
                    .filter_map(|r| r.sku.clone())
                    .collect();
                let (known_eans, known_skus) = catalog
                    .send(crate::store::catalog::ExistingKeys { eans, skus })
                    .await
                    .map_err(retry)?;
                for r in &rows {
                    let known = match (&r.ean, &r.sku) {
                        (Some(e), _) => known_eans.contains(e.as_str()),
                        (None, Some(k)) => known_skus.contains(&k.to_lowercase()),
                        (None, None) => false,
                    };
                    if known {
                        w.c.would_update += 1;
                    } else {
                        w.c.would_create += 1;
                    }
                }
                if sample.len() < SAMPLE {
                    sample.extend(rows.iter().take(SAMPLE - sample.len()).map(|r| json!(r)));
                }
            }
            w.account(errors).await?;
        }
        w.drain().await
    }
    .await;
    if let Err(e) = written {
        drop(rx);
        // Batches already sent are written whatever stopped the job (a cancel, the error
        // policy): settled, so that the job's counters and rejects say what it wrote.
        w.stopping = true;
        if let Err(more) = w.drain().await {
            tracing::warn!(job = %job_id, error = %more, "batches in flight not settled");
        }
        let _ = parser.await;
        return Err(e);
    }
    match parser.await {
        Ok(()) => {}
        Err(e) => return Err(fatal(format!("the parser stopped: {e}"))),
    }
    let c = w.c;
    stage("finish", json!(&c));
    // A full import: the supplier's offers the file did not list go to stock 0 (never deleted).
    let mut missing = Value::Null;
    if full && !dry_run {
        let msg = MarkMissing {
            job_id,
            supplier_id,
            warehouse: supplier.code.clone(),
        };
        let report = catalog.send(msg.by(origin.clone())).await.map_err(retry)?;
        missing = json!(report);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "counters": c,
        "file": info,
        "dry_run": dry_run,
        "mode": if full { "full" } else { "delta" },
        "missing": missing,
        "sample": sample,
        "duration_ms": (secs * 1000.0) as u64,
        "rows_per_sec": if secs > 0.0 { (c.rows_read as f64 / secs) as u64 } else { 0 },
    }))
}

/// The file as the parser found it (format, encoding, delimiter, header line), recorded with
/// the job, and a log line that says how it is read.
#[allow(clippy::too_many_arguments)]
async fn record_file(
    w: &Writer<'_>,
    p: &Value,
    info: &Value,
    supplier_id: Uuid,
    bucket: &str,
    key: &str,
    size: u64,
    url: Option<&str>,
) {
    let (imports, job_id) = (&w.deps.imports, w.job_id);
    let text = |k: &str| info[k].as_str().map(str::to_owned);
    let file = pm_storage::imports::ImportFile {
        job_id,
        supplier_id,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        name: p["file_name"].as_str().map(str::to_owned),
        size: Some(size as i64),
        sha256: p["sha256"].as_str().map(str::to_owned),
        source_url: url.map(str::to_owned),
        format: text("format"),
        encoding: text("encoding"),
        delimiter: text("delimiter"),
        sheet: text("sheet"),
        header_line: info["header_line"].as_i64(),
        profile: text("profile"),
    };
    if let Err(e) = imports.record_file(&file).await {
        tracing::warn!(job = %job_id, error = %e, "import file not recorded");
    }
    let how = if p["template_id"].is_string() || p["template"].is_object() {
        "the template".to_owned()
    } else if p["mapping"].is_object() {
        "the mapping given".to_owned()
    } else if let Some(profile) = info["profile"].as_str() {
        format!("the {profile} export layout")
    } else {
        "the suggested mapping".to_owned()
    };
    let msg = format!(
        "reading a {} file{}{}, header on line {}, with {how}",
        info["format"].as_str().unwrap_or("?"),
        info["encoding"]
            .as_str()
            .map(|e| format!(" in {e}"))
            .unwrap_or_default(),
        info["delimiter"]
            .as_str()
            .map(|d| format!(" delimited by {d:?}"))
            .unwrap_or_default(),
        info["header_line"]
    );
    note(imports, job_id, "info", &msg, Some(info)).await;
}

/// The categories of an import's rows: each distinct category path (`Clothing > Tshirts`)
/// found or made once per job (levels by their slugs under their parents), and set as the
/// products' primary category. A path the catalog refuses (a level with no letter or digit)
/// is reported on each of its rows, which land without it.
struct Categories<'a> {
    catalog: &'a Mailbox<CatalogStore>,
    origin: Origin,
    /// Path as in the file → the category, or why it was refused. Looked up per row: foldhash,
    /// the file's own text needs no protection from chosen collisions.
    known: HashMap<String, Result<Uuid, String>, FastHash>,
}

impl Categories<'_> {
    async fn resolve(
        &mut self,
        rows: &[ProductRow],
        errors: &mut Vec<NewImportError>,
    ) -> Result<Vec<Option<Uuid>>, JobError> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(path) = r.category_path.as_deref() else {
                out.push(None);
                continue;
            };
            let found = match self.known.get(path) {
                Some(found) => found.clone(),
                None => {
                    let names: Vec<String> = pm_imports::rows::category_levels(path)
                        .map(str::to_owned)
                        .collect();
                    let found = if names.is_empty() {
                        Err(format!("the category path {path:?} names no category"))
                    } else {
                        let msg = crate::store::catalog_entities::EnsureCategoryPath { names };
                        match self.catalog.send(msg.by(self.origin.clone())).await {
                            Ok(c) => Ok(c.id),
                            Err(pm_supervisors::CallError::Handler(e)) if e.is_callers() => {
                                Err(e.to_string())
                            }
                            Err(e) => return Err(retry(e)),
                        }
                    };
                    self.known.insert(path.to_owned(), found.clone());
                    found
                }
            };
            match found {
                Ok(id) => out.push(Some(id)),
                Err(message) => {
                    errors.push(NewImportError {
                        line: r.line as i64,
                        column: Some("category_path".into()),
                        value: Some(path.to_owned()),
                        code: "refused".into(),
                        message,
                        raw: Vec::new(),
                    });
                    out.push(None);
                }
            }
        }
        Ok(out)
    }
}

/// What the parser gave for one batch, counted when the batch settles (so that the published
/// counters only ever count rows whose batch is written).
#[derive(Debug, Clone, Copy)]
struct Read {
    /// Data rows read, rejects included.
    rows: u64,
    /// Valid rows a later row of the batch replaced.
    superseded: u64,
}

impl Counters {
    fn count_read(&mut self, read: Read, valid: usize) {
        self.rows_read += read.rows;
        self.superseded += read.superseded;
        self.valid += valid as u64;
    }
}

/// What a row's settling needs once its values went to the catalog (moved there, not copied).
struct RowTail {
    line: u64,
    /// A variation's parent SKU, with its attributes (the variation's axes).
    parent_sku: Option<String>,
    attributes: Vec<(String, String)>,
    images: Vec<String>,
}

/// A batch sent to the catalog, not yet settled.
struct InFlight {
    read: Read,
    rows: Vec<RowTail>,
    /// The batch's parse rejects, recorded when it settles.
    errors: Vec<NewImportError>,
    /// Its EANs, SKUs and supplier SKUs (hashed): a later batch that shares one waits for it.
    keys: HashSet<u64, FastHash>,
    write: tokio::task::JoinHandle<Result<Vec<ImportOutcome>, crate::store::StoreCallError>>,
}

/// The write stage of one import: batches go to the catalog's bulk lane up to
/// `max_in_flight` at once (two on PostgreSQL: a second connection works while the first
/// commits; one on SQLite, which has one writer), and settle in file order: their outcomes
/// counted, their variations linked, their images queued, their rejects recorded. A batch that
/// shares a key (EAN, SKU, supplier SKU) with one in flight waits for it, so the later row
/// of a key is always written last, as in a file read one batch at a time.
struct Writer<'a> {
    deps: &'a ImportDeps,
    run: &'a JobRun,
    stage: &'a StageFn,
    origin: Origin,
    job_id: Uuid,
    dry_run: bool,
    max_errors: Option<u64>,
    c: Counters,
    next_analyze: u64,
    in_flight: VecDeque<InFlight>,
    max_in_flight: usize,
    /// The job stops: what is in flight is settled without applying the error policy again.
    stopping: bool,
}

impl Writer<'_> {
    /// Sends `batch` (the rows `rows`, parsed with `errors` rejected) once there is room and
    /// no batch in flight shares a key with it.
    async fn send(
        &mut self,
        batch: pm_storage::catalog::ImportBatch,
        read: Read,
        rows: Vec<RowTail>,
        errors: Vec<NewImportError>,
    ) -> Result<(), JobError> {
        if rows.is_empty() {
            // Nothing to write: it is counted in its turn like any batch.
            self.drain().await?;
            self.c.count_read(read, 0);
            return self.account(errors).await;
        }
        let keys = batch_keys(&batch.rows);
        while self.in_flight.len() >= self.max_in_flight
            || self.in_flight.iter().any(|f| !f.keys.is_disjoint(&keys))
        {
            let Some(first) = self.in_flight.pop_front() else {
                break;
            };
            self.settle(first).await?;
        }
        let catalog = self.deps.catalog.clone();
        let msg = ImportBatch(batch).by(self.origin.clone());
        // A task of its own, so that it goes on while the writer waits for an earlier one.
        let write = tokio::spawn(async move { catalog.send(msg).await });
        self.in_flight.push_back(InFlight {
            read,
            rows,
            errors,
            keys,
            write,
        });
        Ok(())
    }

    /// Settles every batch in flight, in order.
    async fn drain(&mut self) -> Result<(), JobError> {
        while let Some(first) = self.in_flight.pop_front() {
            self.settle(first).await?;
        }
        Ok(())
    }

    /// Waits for a batch's write and counts what it did.
    async fn settle(&mut self, f: InFlight) -> Result<(), JobError> {
        let InFlight {
            read,
            rows,
            mut errors,
            write,
            ..
        } = f;
        let outcomes = write
            .await
            .map_err(|e| retry(format!("the batch's write stopped: {e}")))?
            .map_err(retry)?;
        let c = &mut self.c;
        c.count_read(read, rows.len());
        let mut variations: Vec<(&RowTail, Uuid, String)> = Vec::new();
        let mut with_images: Vec<(Uuid, &RowTail)> = Vec::new();
        for (row, o) in rows.iter().zip(outcomes) {
            let product_id = match o.product {
                UpsertResult::Created { id }
                | UpsertResult::Updated { id }
                | UpsertResult::Unchanged { id } => Some(id),
                UpsertResult::Failed { .. } => None,
            };
            match o.product {
                UpsertResult::Created { .. } => c.created += 1,
                UpsertResult::Updated { .. } => c.updated += 1,
                UpsertResult::Unchanged { .. } => c.unchanged += 1,
                UpsertResult::Failed { field, message } => {
                    errors.push(refused(row.line, field, message));
                    continue;
                }
            }
            c.prices_changed += u64::from(o.prices_changed);
            c.stocks_changed += u64::from(o.stock_changed);
            c.offers_changed += u64::from(o.offer_changed);
            for (field, message) in o.refused {
                errors.push(refused(row.line, field, message));
            }
            if let (Some(parent), Some(id)) = (&row.parent_sku, product_id) {
                variations.push((row, id, parent.clone()));
            }
            if let (false, Some(id)) = (row.images.is_empty(), product_id) {
                with_images.push((id, row));
            }
        }
        link_variations(&self.deps.catalog, &self.origin, &variations, &mut errors).await?;
        self.c.images_queued += queue_images(
            &self.deps.media,
            self.job_id,
            self.run.job.created_by,
            &with_images,
        )
        .await?;
        self.account(errors).await
    }

    /// What every batch ends with: its rejects recorded, the planner's statistics refreshed
    /// as the catalog grows, the progress published, and the error policy applied.
    async fn account(&mut self, errors: Vec<NewImportError>) -> Result<(), JobError> {
        let c = &mut self.c;
        c.rejected += errors.len() as u64;
        self.deps
            .imports
            .add_errors(self.job_id, &errors)
            .await
            .map_err(retry)?;
        // The planner's statistics as the catalog grows under this import: when the rows it
        // wrote doubled since the last refresh (10,000, 20,000, 40,000...).
        let written = c.created + c.updated;
        if !self.dry_run && written >= self.next_analyze {
            self.next_analyze = written.saturating_mul(2);
            if let Err(e) = self
                .deps
                .catalog
                .send(crate::store::catalog::AnalyzeImportTables)
                .await
            {
                tracing::warn!(job = %self.job_id, error = %e, "statistics not refreshed");
            }
        }
        let counters = json!(&self.c);
        self.run
            .progress(json!({ "stage": "write", "counters": counters }));
        (self.stage)("write", counters);
        if let (Some(max), false) = (self.max_errors, self.stopping) {
            if self.c.rejected > max {
                return Err(fatal(format!(
                    "stopped after {} rejected rows (the job allows {max}); see its errors",
                    self.c.rejected
                )));
            }
        }
        Ok(())
    }
}

/// A batch's keys as the catalog writes them (EANs, SKUs without regard to case, supplier
/// SKUs), each as a 64-bit hash: two keys that share a hash only make a batch wait for one
/// it did not need to, and a set of numbers costs no allocation per key.
fn batch_keys(rows: &[pm_storage::catalog::ImportRow]) -> HashSet<u64, FastHash> {
    use std::hash::BuildHasher;
    // The same seed for every batch: their keys are compared with each other.
    let h = foldhash::fast::FixedState::default();
    let mut keys = HashSet::with_capacity_and_hasher(rows.len() * 3, FastHash::default());
    for r in rows {
        if let Some(e) = &r.product.ean {
            keys.insert(h.hash_one(("e", e.as_str())));
        }
        if let Some(s) = &r.product.sku {
            keys.insert(h.hash_one(("s", lowercase(s).as_ref())));
        }
        if let Some(o) = &r.offer {
            keys.insert(h.hash_one(("o", o.supplier_sku.as_str())));
        }
    }
    keys
}

/// `s` without regard to case, allocated only when it has a letter to lower.
fn lowercase(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.to_lowercase())
    }
}

/// Queues a `media.fetch` job for the image URLs of a written batch that their products do not
/// have yet (one query for the batch's known URLs; a re-import of the same file queues
/// nothing). Returns how many URLs were queued.
async fn queue_images(
    media: &crate::media::MediaDeps,
    job_id: Uuid,
    by: Option<Uuid>,
    rows: &[(Uuid, &RowTail)],
) -> Result<u64, JobError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let known = media.store.source_urls(&ids).await.map_err(retry)?;
    let products: Vec<crate::media::fetch::ProductUrls> = rows
        .iter()
        .filter_map(|(id, r)| {
            let urls: Vec<String> = r
                .images
                .iter()
                .filter(|u| !known.contains(&(*id, (*u).clone())))
                .cloned()
                .collect();
            (!urls.is_empty()).then_some(crate::media::fetch::ProductUrls {
                product_id: *id,
                line: r.line,
                urls,
            })
        })
        .collect();
    let queued: usize = products.iter().map(|p| p.urls.len()).sum();
    if queued > 0 {
        media
            .queue_fetch(Some(job_id), products, by)
            .await
            .map_err(retry)?;
    }
    Ok(queued as u64)
}

/// A value of a row the catalog refused (the row's other values landed).
fn refused(line: u64, field: &str, message: String) -> NewImportError {
    NewImportError {
        line: line as i64,
        column: Some(field.to_owned()),
        value: None,
        code: "refused".into(),
        message,
        raw: Vec::new(),
    }
}

/// A parsed row as the catalog writes it: the product, its prices (in the row's currency),
/// the stock, and the supplier's offer under its own reference (the SKU column when there is
/// no separate supplier SKU, else the EAN), with cost and stock as the supplier states them.
fn import_row(r: &ProductRow) -> pm_storage::catalog::ImportRow {
    into_import_row(r.clone()).0
}

/// [`import_row`] by moving the row's values (the write path keeps only what settling needs).
fn into_import_row(r: ProductRow) -> (pm_storage::catalog::ImportRow, RowTail) {
    let prices: Vec<(PriceType, Money)> = match r.currency {
        None => Vec::new(),
        Some(currency) => r
            .prices
            .iter()
            .map(|(target, amount)| {
                let t = match target {
                    Field::CostPrice => PriceType::Cost,
                    Field::SalePrice => PriceType::Sale,
                    Field::Msrp => PriceType::Msrp,
                    _ => PriceType::Retail,
                };
                (t, Money::new(*amount, currency))
            })
            .collect(),
    };
    // The supplier's own reference; a supplier that has none is known by the EAN it sends.
    let key = r
        .supplier_sku
        .or_else(|| r.sku.clone())
        .or_else(|| r.ean.map(|e| e.as_str().to_owned()));
    let offer = key.map(|sku| ImportOffer {
        supplier_sku: sku,
        cost: prices
            .iter()
            .find(|(t, _)| *t == PriceType::Cost)
            .map(|(_, m)| *m),
        stock: r.stock,
    });
    let product = NewProduct {
        ean: r.ean,
        sku: r.sku,
        title: r.title,
        description: r.description,
        brand: r.brand,
        attributes: r
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        ..Default::default()
    };
    let row = pm_storage::catalog::ImportRow {
        product,
        prices,
        stock: r.stock,
        offer,
    };
    // A variation's axes are its attributes; other rows' are not needed again.
    let attributes = if r.parent_sku.is_some() {
        r.attributes
    } else {
        Vec::new()
    };
    let tail = RowTail {
        line: r.line,
        parent_sku: r.parent_sku,
        attributes,
        images: r.images,
    };
    (row, tail)
}

/// The rows of a batch without those a later row with the same key replaces (EAN, else the
/// SKU without regard to case), in file order.
fn last_of_each_key(rows: Vec<ProductRow>) -> Vec<ProductRow> {
    // Keys borrowed from the rows (a key of its own per row was an allocation per row).
    let keep: Vec<bool> = {
        let mut seen: HashSet<(bool, std::borrow::Cow<'_, str>), FastHash> =
            HashSet::with_capacity_and_hasher(rows.len(), FastHash::default());
        let mut keep: Vec<bool> = rows
            .iter()
            .rev()
            .map(|r| match (&r.ean, &r.sku) {
                (Some(e), _) => seen.insert((true, std::borrow::Cow::Borrowed(e.as_str()))),
                (None, Some(s)) => seen.insert((false, lowercase(s))),
                (None, None) => true,
            })
            .collect();
        keep.reverse();
        keep
    };
    if keep.iter().all(|k| *k) {
        return rows;
    }
    rows.into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

/// The payload's `mapping`: `{"<column header>": "<field>", ...}` (fields as in
/// [`Field`]: `ean`, `sku`, `title`, `cost_price`, ...); absent or null: suggested.
fn named_mapping(v: &Value) -> Result<Option<Vec<(String, Field)>>, JobError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => m
            .iter()
            .map(|(header, field)| {
                serde_json::from_value::<Field>(field.clone())
                    .map(|f| (header.clone(), f))
                    .map_err(|e| fatal(format!("payload: mapping of {header:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(fatal(
            "payload: mapping must be an object of column header to field",
        )),
    }
}

/// A template as JSON (a stored one, or given with the upload), checked.
fn template_of(v: &Value) -> Result<Template, JobError> {
    let t: Template =
        serde_json::from_value(v.clone()).map_err(|e| fatal(format!("the mapping template: {e}")))?;
    t.check()
        .map_err(|e| fatal(format!("the mapping template: {e}")))?;
    Ok(t)
}

/// Variations (rows naming a parent SKU: shop exports) linked to their parent, found by SKU
/// among the live products; the axes are the row's attributes. A parent that is not there is
/// the row's reject (its product landed, unlinked).
async fn link_variations(
    catalog: &Mailbox<CatalogStore>,
    origin: &Origin,
    variations: &[(&RowTail, Uuid, String)],
    errors: &mut Vec<NewImportError>,
) -> Result<(), JobError> {
    if variations.is_empty() {
        return Ok(());
    }
    let skus: Vec<String> = variations.iter().map(|(_, _, p)| p.clone()).collect();
    let parents = catalog.send(IdsBySku { skus }).await.map_err(retry)?;
    for (row, id, parent) in variations {
        let Some(parent_id) = parents.get(&parent.to_lowercase()).copied() else {
            errors.push(refused(
                row.line,
                "parent_sku",
                format!("no product has the parent sku {parent:?}"),
            ));
            continue;
        };
        let axes: std::collections::BTreeMap<String, String> = row.attributes.iter().cloned().collect();
        let msg = crate::store::catalog_entities::SetVariant {
            product_id: *id,
            parent_id,
            axes,
        };
        match catalog.send(msg.by(origin.clone())).await {
            Ok(_) => {}
            Err(pm_supervisors::CallError::Handler(e)) if e.is_callers() => {
                errors.push(refused(row.line, "parent_sku", e.to_string()));
            }
            Err(e) => return Err(retry(e)),
        }
    }
    Ok(())
}

fn reject(e: RowError) -> NewImportError {
    NewImportError {
        line: e.line as i64,
        column: e.column,
        value: e.value,
        code: e.code.to_owned(),
        message: e.message,
        raw: e.raw,
    }
}

/// What the parser reads: a whole spreadsheet (its bytes; [`SheetRows`] streams the sheet out
/// of them), or a text file as it streams in.
enum Input {
    Sheet(Vec<u8>),
    Text(Box<dyn std::io::Read + Send>),
}

/// The parser stage: the file's info first, then batches of rows and rejects.
fn parse(
    input: Input,
    sheet: Option<SheetRef>,
    options: ReadOptions,
    tx: mpsc::Sender<Result<Parsed, FileError>>,
) {
    let mut out = Batcher::new(&tx);
    match input {
        Input::Sheet(bytes) => match SheetRows::open(bytes, sheet, options) {
            Ok(mut rows) => out.feed(json!(rows.info()), || rows.next_row()),
            Err(e) => out.fail(e),
        },
        Input::Text(reader) => match CsvRows::open(reader, options) {
            Ok(mut rows) => out.feed(json!(rows.info()), || rows.next_row()),
            Err(e) => out.fail(e),
        },
    }
}

/// Rows and rejects gathered into batches for the writer. Every send blocks while the writer
/// has [`IN_FLIGHT`] batches waiting; `false`: the writer has gone (the job stopped).
struct Batcher<'a> {
    tx: &'a mpsc::Sender<Result<Parsed, FileError>>,
    rows: Vec<ProductRow>,
    rejects: Vec<RowError>,
}

impl<'a> Batcher<'a> {
    fn new(tx: &'a mpsc::Sender<Result<Parsed, FileError>>) -> Self {
        Self {
            tx,
            rows: Vec::with_capacity(BATCH),
            rejects: Vec::new(),
        }
    }

    /// The file's info, then every row `next` gives, in batches. A file that cannot be read on
    /// (an I/O error, a corrupt workbook part) fails the job with what it says, after the rows
    /// read before it: they are as good as any, and the writer lands them first.
    fn feed(
        &mut self,
        info: Value,
        mut next: impl FnMut() -> Option<Result<Result<ProductRow, Box<RowError>>, FileError>>,
    ) {
        if !self.info(info) {
            return;
        }
        while let Some(r) = next() {
            match r {
                Ok(r) => {
                    if !self.push(r) {
                        return;
                    }
                }
                Err(e) => {
                    if self.flush() {
                        self.fail(e);
                    }
                    return;
                }
            }
        }
        self.flush();
    }

    fn info(&mut self, info: Value) -> bool {
        self.tx.blocking_send(Ok(Parsed::Info(info))).is_ok()
    }

    fn fail(&mut self, e: FileError) {
        let _ = self.tx.blocking_send(Err(e));
    }

    fn push(&mut self, r: Result<ProductRow, Box<RowError>>) -> bool {
        match r {
            Ok(p) => self.rows.push(p),
            Err(e) => self.rejects.push(*e),
        }
        if self.rows.len() + self.rejects.len() >= BATCH {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        let batch = Parsed::Batch(std::mem::take(&mut self.rows), std::mem::take(&mut self.rejects));
        self.tx.blocking_send(Ok(batch)).is_ok()
    }
}
