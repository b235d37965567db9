//! `import.file` (imports queue): one supplier file already in object storage into the
//! catalog. The first slice of issue 8's pipeline, on the job layer; the per-supplier session
//! actors, uploads, templates and rollback build on it.
//!
//! Payload: `{"supplier_id": uuid, "bucket": "imports", "key": "2026/12/04/….csv",
//! "format": "csv" | "xlsx" | … (default: from the key's extension, else sniffed),
//! "encoding", "delimiter", "skip_rows", "sheet", "dry_run"}`.
//!
//! Stages: the object is read (bounded by `MAX_FILE_BYTES`), parsed and validated on the
//! blocking pool ([`pm_imports`]), and handed over in batches of [`BATCH`] rows through a
//! channel of [`IN_FLIGHT`] batches, so a slow database slows the parser instead of filling
//! memory; each batch is one bulk upsert on the catalog's bulk lane, then its prices and
//! stocks (a history row only on change, with the job as source). Rejected rows go to
//! `import_errors` with their line. A rerun (after a crash or a retry) clears the job's rejects
//! and upserts again: nothing is duplicated, an unchanged row writes nothing.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::TryStreamExt;
use pm_domain::Money;
use pm_imports::mapping::Target as Field;
use pm_imports::rows::{CsvRows, FileError, ProductRow, ReadOptions, RowError};
use pm_imports::sheets::{SheetRef, SheetRows};
use pm_storage::catalog::{ChangeSource, NewPrice, NewProduct, PriceType, UpsertResult};
use pm_storage::imports::{Imports, NewImportError};
use pm_storage::object_store::ObjectStore;
use pm_supervisors::Mailbox;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{JobError, JobHandler, JobRun};
use crate::changes::{By, Origin};
use crate::store::catalog::{CatalogStore, UpsertProducts};
use crate::store::catalog_entities::{GetSupplier, SetPrice, SetStock, UpsertOffer};

pub const KIND: &str = "import.file";

/// Rows a dry run shows as they would be written.
const SAMPLE: usize = 10;
/// Rows per bulk upsert (the catalog's batch limit).
pub const BATCH: usize = 1000;
/// Parsed batches waiting for the writer at most: the parser blocks beyond.
const IN_FLIGHT: usize = 2;
/// The largest file read (the upload limit is checked before; this guards the job itself).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

pub struct ImportFile {
    pub catalog: Mailbox<CatalogStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub imports: Imports,
    /// Where the notice of an import that ended with rejects goes (to whoever started it; a
    /// failed job is notified by the worker).
    pub core: Mailbox<crate::store::core::CoreStore>,
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
    /// A dry run's forecast: valid rows whose key no live product has, and those it has.
    would_create: u64,
    would_update: u64,
}

impl JobHandler for ImportFile {
    fn run(&self, run: JobRun) -> BoxFuture<'static, Result<Value, JobError>> {
        let (catalog, objects, imports) = (self.catalog.clone(), self.objects.clone(), self.imports.clone());
        let core = self.core.clone();
        Box::pin(async move {
            let (job_id, user, name) = (
                run.job.id,
                run.job.created_by,
                run.job.payload["file_name"].as_str().map(str::to_owned),
            );
            let result = import(run, catalog, objects, imports).await?;
            let rejected = result["counters"]["rejected"].as_u64().unwrap_or(0);
            if let (Some(user_id), true) = (user, rejected > 0) {
                let file = name.unwrap_or_else(|| "a file".into());
                let notice = crate::store::core::Notify {
                    user_id,
                    kind: "import_rejects".into(),
                    title: format!("import of {file} ended with {rejected} rejected rows"),
                    body: Some(format!("/api/v1/imports/jobs/{job_id}/errors")),
                };
                if let Err(e) = core.send(notice).await {
                    tracing::warn!(job = %job_id, error = %e, "import notice not sent");
                }
            }
            Ok(result)
        })
    }
}

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::Fatal(e.to_string())
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retryable(e.to_string())
}

async fn import(
    run: JobRun,
    catalog: Mailbox<CatalogStore>,
    objects: Arc<dyn ObjectStore>,
    imports: Imports,
) -> Result<Value, JobError> {
    let started = Instant::now();
    let job_id = run.job.id;
    let p = run.job.payload.clone();
    let supplier_id: Uuid = p["supplier_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fatal("payload: supplier_id (a uuid) is required"))?;
    let bucket = p["bucket"].as_str().unwrap_or("imports").to_owned();
    let key = p["key"]
        .as_str()
        .ok_or_else(|| fatal("payload: key is required"))?
        .to_owned();
    let dry_run = p["dry_run"].as_bool().unwrap_or(false);
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
        mapping: None,
        named_mapping: named_mapping(&p["mapping"])?,
        currency: Some(supplier.default_currency),
        decimal_mark: Default::default(),
    };
    let sheet = match &p["sheet"] {
        Value::String(s) => Some(SheetRef::Name(s.clone())),
        Value::Number(n) => n.as_u64().map(|i| SheetRef::Index(i as usize)),
        _ => None,
    };

    // The file, bounded.
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
    let bytes: Vec<u8> = stream
        .try_fold(
            Vec::with_capacity(meta.size as usize),
            |mut acc, chunk| async move {
                acc.extend_from_slice(&chunk);
                Ok(acc)
            },
        )
        .await
        .map_err(retry)?;

    // A rerun of this job records its rejects afresh (a dry run's too: they are its report).
    imports.clear_errors(job_id).await.map_err(retry)?;
    let spreadsheet = matches!(
        bytes.get(..4),
        Some([0x50, 0x4B, 0x03, 0x04] | [0xD0, 0xCF, 0x11, 0xE0])
    );
    let (tx, mut rx) = mpsc::channel::<Result<Parsed, FileError>>(IN_FLIGHT);
    // Parsing is CPU work: on the blocking pool, never on the async workers.
    let parser = tokio::task::spawn_blocking(move || parse(bytes, spreadsheet, sheet, options, tx));

    let mut c = Counters::default();
    // A dry run's first valid rows, as they would be written.
    let mut sample: Vec<Value> = Vec::new();
    let mut info = Value::Null;
    let origin = Origin::system("import");
    let source = ChangeSource::Import { job_id };
    while let Some(msg) = rx.recv().await {
        if run.is_cancelled() {
            return Err(JobError::Cancelled);
        }
        let (rows, rejects) = match msg {
            Err(e) => return Err(fatal(e)),
            Ok(Parsed::Info(i)) => {
                info = i;
                continue;
            }
            Ok(Parsed::Batch(rows, rejects)) => (rows, rejects),
        };
        c.rows_read += (rows.len() + rejects.len()) as u64;
        let mut errors: Vec<NewImportError> = rejects.into_iter().map(reject).collect();
        let before = rows.len();
        let rows = last_of_each_key(rows);
        c.superseded += (before - rows.len()) as u64;
        if !rows.is_empty() && !dry_run {
            let products: Vec<NewProduct> = rows.iter().map(new_product).collect();
            let results = catalog
                .send(UpsertProducts(products).by(origin.clone()))
                .await
                .map_err(retry)?;
            c.valid += rows.len() as u64;
            for (row, result) in rows.iter().zip(results) {
                let id = match result {
                    UpsertResult::Created { id } => {
                        c.created += 1;
                        id
                    }
                    UpsertResult::Updated { id } => {
                        c.updated += 1;
                        id
                    }
                    UpsertResult::Unchanged { id } => {
                        c.unchanged += 1;
                        id
                    }
                    UpsertResult::Failed { field, message } => {
                        errors.push(NewImportError {
                            line: row.line as i64,
                            column: Some(field.to_owned()),
                            value: None,
                            code: "refused".into(),
                            message,
                            raw: Vec::new(),
                        });
                        continue;
                    }
                };
                let to = Target {
                    product_id: id,
                    supplier_id,
                    job_id,
                    warehouse: &supplier.code,
                };
                write_values(&catalog, &origin, source, &to, row, &mut c, &mut errors).await?;
            }
        } else if dry_run && !rows.is_empty() {
            // A dry run validates and forecasts; nothing is written.
            c.valid += rows.len() as u64;
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
                    c.would_update += 1;
                } else {
                    c.would_create += 1;
                }
            }
            if sample.len() < SAMPLE {
                sample.extend(rows.iter().take(SAMPLE - sample.len()).map(|r| json!(r)));
            }
        }
        c.rejected += errors.len() as u64;
        imports.add_errors(job_id, &errors).await.map_err(retry)?;
        run.progress(json!({ "stage": "write", "counters": &c }));
    }
    match parser.await {
        Ok(()) => {}
        Err(e) => return Err(fatal(format!("the parser stopped: {e}"))),
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "counters": c,
        "file": info,
        "dry_run": dry_run,
        "sample": sample,
        "duration_ms": (secs * 1000.0) as u64,
        "rows_per_sec": if secs > 0.0 { (c.rows_read as f64 / secs) as u64 } else { 0 },
    }))
}

/// Where one stored row's values go.
struct Target<'a> {
    product_id: Uuid,
    supplier_id: Uuid,
    job_id: Uuid,
    /// The stock's warehouse: the supplier's code.
    warehouse: &'a str,
}

/// Prices, stock and the supplier's offer of one stored row: one message each, written only
/// on change.
async fn write_values(
    catalog: &Mailbox<CatalogStore>,
    origin: &Origin,
    source: ChangeSource,
    to: &Target<'_>,
    row: &ProductRow,
    c: &mut Counters,
    errors: &mut Vec<NewImportError>,
) -> Result<(), JobError> {
    let product_id = to.product_id;
    let warehouse = to.warehouse;
    let refused = |errors: &mut Vec<NewImportError>, column: &str, e: String| {
        errors.push(NewImportError {
            line: row.line as i64,
            column: Some(column.to_owned()),
            value: None,
            code: "refused".into(),
            message: e,
            raw: Vec::new(),
        });
    };
    if let Some(currency) = row.currency {
        for (target, amount) in &row.prices {
            let price_type = match target {
                Field::CostPrice => PriceType::Cost,
                Field::SalePrice => PriceType::Sale,
                Field::Msrp => PriceType::Msrp,
                _ => PriceType::Retail,
            };
            let msg = SetPrice {
                product_id,
                price: NewPrice {
                    price_type,
                    price: Money::new(*amount, currency),
                    valid_from: None,
                    valid_to: None,
                },
                source,
            };
            match catalog.send(msg.by(origin.clone())).await {
                Ok(changed) => c.prices_changed += u64::from(changed.changed),
                Err(pm_supervisors::CallError::Handler(e)) if e.is_callers() => {
                    refused(errors, price_type.as_str(), e.to_string());
                }
                Err(e) => return Err(retry(e)),
            }
        }
    }
    // The supplier's offer, under its own reference (the SKU column when there is no
    // separate supplier SKU): cost and availability as the supplier states them.
    if let Some(sku) = row.supplier_sku.as_ref().or(row.sku.as_ref()) {
        let cost = row.currency.and_then(|cur| {
            row.prices
                .iter()
                .find(|(t, _)| *t == Field::CostPrice)
                .map(|(_, a)| Money::new(*a, cur))
        });
        let offer = pm_storage::catalog::NewSupplierProduct {
            supplier_id: to.supplier_id,
            product_id,
            supplier_sku: sku.clone(),
            cost_price: cost,
            supplier_stock: row.stock,
            lead_time_days: None,
            last_seen_import: Some(to.job_id),
        };
        match catalog.send(UpsertOffer { offer }.by(origin.clone())).await {
            Ok(changed) => c.offers_changed += u64::from(changed.changed),
            Err(pm_supervisors::CallError::Handler(e)) if e.is_callers() => {
                refused(errors, "supplier_sku", e.to_string());
            }
            Err(e) => return Err(retry(e)),
        }
    }
    if let Some(quantity) = row.stock {
        let msg = SetStock {
            product_id,
            warehouse: warehouse.to_owned(),
            quantity,
            source,
        };
        match catalog.send(msg.by(origin.clone())).await {
            Ok(changed) => c.stocks_changed += u64::from(changed.changed),
            Err(pm_supervisors::CallError::Handler(e)) if e.is_callers() => {
                refused(errors, "stock", e.to_string())
            }
            Err(e) => return Err(retry(e)),
        }
    }
    Ok(())
}

/// The rows of a batch without those a later row with the same key replaces (EAN, else the
/// SKU without regard to case), in file order.
fn last_of_each_key(rows: Vec<ProductRow>) -> Vec<ProductRow> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<ProductRow> = rows
        .into_iter()
        .rev()
        .filter(|r| {
            let key = match (&r.ean, &r.sku) {
                (Some(e), _) => format!("ean:{}", e.as_str()),
                (None, Some(s)) => format!("sku:{}", s.to_lowercase()),
                (None, None) => return true,
            };
            seen.insert(key)
        })
        .collect();
    kept.reverse();
    kept
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

fn new_product(r: &ProductRow) -> NewProduct {
    NewProduct {
        ean: r.ean,
        sku: r.sku.clone(),
        title: r.title.clone(),
        description: r.description.clone(),
        brand: r.brand.clone(),
        ..Default::default()
    }
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

/// The parser stage: the file's info first, then batches of rows and rejects.
fn parse(
    bytes: Vec<u8>,
    spreadsheet: bool,
    sheet: Option<SheetRef>,
    options: ReadOptions,
    tx: mpsc::Sender<Result<Parsed, FileError>>,
) {
    let send = |m: Result<Parsed, FileError>| tx.blocking_send(m).is_ok();
    let mut rows = Vec::with_capacity(BATCH);
    let mut rejects = Vec::new();
    let flush = |rows: &mut Vec<ProductRow>, rejects: &mut Vec<RowError>, force: bool| -> bool {
        if force || rows.len() + rejects.len() >= BATCH {
            let batch = Parsed::Batch(std::mem::take(rows), std::mem::take(rejects));
            return send(Ok(batch));
        }
        true
    };
    if spreadsheet {
        let mut sheet_rows = match SheetRows::open(bytes, sheet, options) {
            Ok(r) => r,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        if !send(Ok(Parsed::Info(json!(sheet_rows.info())))) {
            return;
        }
        while let Some(r) = sheet_rows.next_row() {
            match r {
                Ok(p) => rows.push(p),
                Err(e) => rejects.push(*e),
            }
            if !flush(&mut rows, &mut rejects, false) {
                return;
            }
        }
    } else {
        let mut csv_rows = match CsvRows::open(Cursor::new(bytes), options) {
            Ok(r) => r,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        if !send(Ok(Parsed::Info(json!(csv_rows.info())))) {
            return;
        }
        while let Some(r) = csv_rows.next_row() {
            match r {
                Ok(Ok(p)) => rows.push(p),
                Ok(Err(e)) => rejects.push(*e),
                Err(e) => {
                    send(Err(e));
                    return;
                }
            }
            if !flush(&mut rows, &mut rejects, false) {
                return;
            }
        }
    }
    flush(&mut rows, &mut rejects, true);
}
