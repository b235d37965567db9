//! Supplier imports (issue 8, first slice): upload a supplier's file, follow its job, read its
//! rejects.
//!
//! - `POST /api/v1/suppliers/{id}/imports`: multipart upload (field `file`), stored in the
//!   imports bucket under `YYYY/MM/DD/<uuid>.<ext>` with its size and SHA-256, and an
//!   `import.file` job enqueued on the imports queue (the supplier's jobs run one at a time, in
//!   order: their group is the supplier). Options in the query string.
//! - `GET /api/v1/imports/jobs/{id}`: the job (status, progress, counters, file info).
//! - `GET /api/v1/imports/jobs/{id}/errors`: its rejected rows, in file order, paginated.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use pm_actors::jobs::EnqueueJob;
use pm_actors::store::catalog_entities::GetSupplier;
use pm_actors::store::db::ListImportErrors;
use pm_domain::Permission;
use pm_storage::catalog::Page;
use pm_storage::imports::ImportError;
use pm_storage::jobs::{Job, NewJob, Queue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::catalog::{path_id, PageQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{page_limit, BodyLimit, Query};
use crate::openapi::{BadRequest, Forbidden, NotFound, PayloadTooLarge, Unprocessable};
use crate::AppState;

pub fn router(max_upload: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(
            routes!(upload).layer(
                tower::ServiceBuilder::new()
                    .layer(axum::Extension(BodyLimit(max_upload)))
                    // The multipart envelope around the file: a few kilobytes.
                    .layer(DefaultBodyLimit::max(max_upload.saturating_add(64 * 1024))),
            ),
        )
        .routes(routes!(list))
        .routes(routes!(job))
        .routes(routes!(cancel))
        .routes(routes!(errors))
        .routes(routes!(errors_csv))
        .routes(routes!(rollback))
        .routes(routes!(logs))
        .routes(routes!(save_job_mapping))
        .routes(routes!(give_mapping))
        .routes(routes!(list_templates, save_template))
        .routes(routes!(get_template, delete_template))
        .routes(routes!(statistics))
}

/// An import job as the imports API shows it: the job, and where the import stands.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ImportJob {
    #[serde(flatten)]
    pub job: Job,
    /// `queued`, `awaiting_mapping`, `running`, `succeeded`, `partially_succeeded` (some rows
    /// rejected), `failed`, `cancelled` or `rolled_back`.
    pub import_status: &'static str,
    /// While running: `read`, `parse`, `write` or `finish`.
    pub stage: Option<String>,
    /// When it was rolled back, by whom, and what the rollback did.
    pub rollback: Option<pm_storage::imports::ImportRollback>,
}

/// Whether a job waits for a mapping (see `JobError::Waiting`).
fn awaiting_mapping(job: &Job) -> bool {
    job.status == pm_storage::jobs::JobStatus::Queued
        && job.progress.as_ref().is_some_and(|p| p["awaiting"] == "mapping")
}

async fn import_view(s: &AppState, job: Job) -> Result<ImportJob, ApiError> {
    use pm_storage::jobs::JobStatus;
    let rollback = if job.status == JobStatus::Succeeded {
        s.actors
            .stores
            .imports
            .send(pm_actors::store::db::RollbackOf(job.id))
            .await?
    } else {
        None
    };
    let rejected = job
        .result
        .as_ref()
        .and_then(|r| r["counters"]["rejected"].as_u64())
        .unwrap_or(0);
    let import_status = match job.status {
        _ if rollback.is_some() => "rolled_back",
        JobStatus::Queued if awaiting_mapping(&job) => "awaiting_mapping",
        JobStatus::Queued => "queued",
        JobStatus::Running => "running",
        JobStatus::Succeeded if rejected > 0 => "partially_succeeded",
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "failed",
        JobStatus::Cancelled => "cancelled",
    };
    let stage = match job.status {
        JobStatus::Running => job
            .progress
            .as_ref()
            .and_then(|p| p["stage"].as_str())
            .map(str::to_owned),
        _ => None,
    };
    Ok(ImportJob {
        job,
        import_status,
        stage,
        rollback,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this supplier's imports.
    supplier_id: Option<uuid::Uuid>,
    #[param(value_type = Option<pm_storage::jobs::JobStatus>)]
    status: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Created at or after: an RFC 3339 time, or a day `YYYY-MM-DD` (from its start, UTC).
    from: Option<String>,
    /// Created before: an RFC 3339 time, or a day `YYYY-MM-DD` (that day included, UTC).
    to: Option<String>,
}

#[utoipa::path(
    get,
    path = "/imports/jobs",
    tag = "imports",
    operation_id = "list_import_jobs",
    summary = "Import jobs, newest first",
    description = "The caller's own, or everyone's for admins; by supplier, status and creation time (`from`, `to`).",
    params(ListQuery),
    responses((status = 200, description = "A page of import jobs.", body = Page<ImportJob>)),
)]
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<ImportJob>>, ApiError> {
    let mut filter = super::jobs::visible_jobs(
        &who,
        q.status.as_deref(),
        Some(pm_actors::jobs::import::KIND.into()),
        q.supplier_id.map(|id| format!("supplier:{id}")),
        q.cursor,
        q.limit,
    )?;
    super::jobs::created_between(&mut filter, q.from.as_deref(), q.to.as_deref())?;
    let page = s
        .actors
        .jobs
        .gate(Queue::Imports)
        .send(pm_actors::jobs::ListJobs(filter))
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for job in page.items {
        items.push(import_view(&s, job).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// The import job `id` if the caller may see it (its creator, or an admin).
async fn import_job(s: &AppState, who: &Principal, id: &str) -> Result<Job, ApiError> {
    let (_, job) = super::jobs::fetch(s, who, "imports", id).await?;
    if job.kind != pm_actors::jobs::import::KIND {
        return Err(ApiError::NotFound(format!("import job {id} not found")));
    }
    Ok(job)
}

#[utoipa::path(
    post,
    path = "/imports/jobs/{id}/cancel",
    tag = "imports",
    operation_id = "cancel_import_job",
    summary = "Cancel an import",
    description = "Queued: cancelled at once. Running: it stops after the batch it is writing \
        (what was written stays; the rows read so far are in its counters).",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "Cancelled before it started.", body = super::jobs::Cancelled),
        (status = 202, description = "Running: it is told to stop.", body = super::jobs::Cancelled),
        (status = 409, description = "It had already finished; nothing changed.", body = super::jobs::Cancelled),
        NotFound,
    ),
)]
async fn cancel(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<super::jobs::Cancelled>), ApiError> {
    let job = import_job(&s, &who, &id).await?;
    super::jobs::cancel_job(&s, Queue::Imports, job.id).await
}

/// The multipart form of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The supplier's file: CSV/TSV/TXT in any encoding, or XLSX, XLS, XLSB, ODS.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
    /// Optional, JSON: which column feeds which field, by header name, e.g.
    /// `{"Code": "ean", "Libellé": "title", "Tarif": "cost_price"}`. Without it the mapping is
    /// suggested from the headers and values, and a job whose suggestion is not sure fails
    /// saying which field it could not find.
    mapping: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// `true`: parse and validate only; nothing is written.
    #[param(pattern = "^(true|false)$")]
    dry_run: Option<String>,
    /// A WHATWG encoding label (`windows-1252`, `iso-8859-15`) instead of detection.
    encoding: Option<String>,
    /// `;`, `,`, `|` or `tab` instead of detection.
    #[param(pattern = "^(;|,|\\||tab)$")]
    delimiter: Option<String>,
    /// Records to pass over before looking for the header.
    #[param(minimum = 0, maximum = 1000)]
    skip_rows: Option<u32>,
    /// The header's line (a text file's line, a sheet's row; 1-based) instead of looking for
    /// it below title lines; wins over the template's.
    #[param(minimum = 1, maximum = 1000)]
    header_line: Option<u32>,
    /// Spreadsheets: the sheet's name (default: the first sheet).
    sheet: Option<String>,
    /// The supplier's mapping template to read the file with.
    template_id: Option<uuid::Uuid>,
    /// `full`: the supplier's offers missing from the file get stock 0 (never deleted);
    /// `delta` (default): only the rows of the file are written.
    #[param(pattern = "^(full|delta)$")]
    mode: Option<String>,
    /// Stop the import once more than this many rows were rejected (default: skip bad rows
    /// and go on).
    #[param(minimum = 0, maximum = 1000000000)]
    max_errors: Option<u64>,
}

/// A mapping field: a JSON object of column header to a field name the importer knows.
fn parse_mapping(text: &str) -> Result<serde_json::Value, ApiError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ApiError::invalid("mapping", format!("not JSON: {e}")))?;
    let Some(m) = v.as_object() else {
        return Err(ApiError::invalid(
            "mapping",
            "must be an object of column header to field",
        ));
    };
    for (header, field) in m {
        serde_json::from_value::<pm_imports::mapping::Target>(field.clone())
            .map_err(|e| ApiError::invalid("mapping", format!("{header:?}: {e}")))?;
    }
    Ok(v)
}

/// The file's extension, kept in the object key when it is a plain one.
fn extension(name: Option<&str>) -> String {
    name.and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "bin".into())
}

#[utoipa::path(
    post,
    path = "/suppliers/{id}/imports",
    tag = "imports",
    operation_id = "upload_import",
    summary = "Upload a supplier's file and start its import",
    description = "Multipart, field `file`; or JSON `{\"url\": ...}` for a file the job fetches. \
        The file is stored, then imported by a job on the \
        imports queue (one supplier's imports run one at a time, in order); follow it at \
        `/imports/jobs/{id}` or over the WebSocket (`jobs.imports.<id>`). Needs `jobs:run`.",
    params(("id" = Uuid, Path, description = "The supplier's id."), UploadQuery),
    request_body(content(
        (UploadForm = "multipart/form-data"),
        (UrlImport = "application/json"),
    )),
    responses(
        (status = 202, description = "Stored; the import job is queued.", body = Job),
        BadRequest, Unprocessable, PayloadTooLarge, Forbidden, NotFound,
    ),
)]
async fn upload(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    req: axum::extract::Request,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    who.require(Permission::JobsRun)?;
    let json_body = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    let supplier_id = path_id("id", &id)?;
    // Checked before the supplier: a bad option is the caller's error whatever the id.
    let dry_run = match q.dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("dry_run", "must be true or false")),
    };
    if !matches!(q.mode.as_deref(), None | Some("full") | Some("delta")) {
        return Err(ApiError::invalid("mode", "must be full or delta"));
    }
    if let Some(t) = q.template_id {
        supplier_template(&s, t, supplier_id).await?;
    }
    if q.skip_rows.is_some_and(|n| n > 1000) {
        return Err(ApiError::invalid("skip_rows", "must be 0 to 1000"));
    }
    if q.header_line.is_some_and(|n| !(1..=1000).contains(&n)) {
        return Err(ApiError::invalid("header_line", "must be 1 to 1000"));
    }
    if let Some(label) = &q.encoding {
        pm_imports::decode::encoding_for_label(label).map_err(|e| ApiError::invalid("encoding", e))?;
    }
    // 404 before reading the body when the supplier does not exist.
    s.actors
        .stores
        .catalog
        .send(GetSupplier { id: supplier_id })
        .await?;
    let options = serde_json::json!({
        "supplier_id": supplier_id, "dry_run": dry_run, "encoding": q.encoding,
        "delimiter": q.delimiter, "skip_rows": q.skip_rows, "header_line": q.header_line,
        "sheet": q.sheet,
        "template_id": q.template_id, "mode": q.mode, "max_errors": q.max_errors,
    });
    if json_body {
        // A URL source: the job fetches it (with the upload's size limit and a timeout).
        let crate::extract::Json(body) =
            <crate::extract::Json<UrlImport> as axum::extract::FromRequest<AppState>>::from_request(req, &s)
                .await?;
        let url = check_url(&s.settings.imports, &body.url)?;
        let mapping = match &body.mapping {
            Some(m) => Some(parse_mapping(&m.to_string())?),
            None => None,
        };
        let mut payload = options;
        payload["url"] = serde_json::json!(url.as_str());
        payload["file_name"] =
            serde_json::json!(url.path_segments().and_then(|mut p| p.next_back()).unwrap_or(""));
        payload["mapping"] = serde_json::json!(mapping);
        payload["bucket"] = serde_json::json!(s.settings.object_store.buckets.imports);
        return enqueue_import(&s, &who, supplier_id, payload).await;
    }
    // Not a multipart body at all: said as problem+json, like every other error.
    let mut form = <Multipart as axum::extract::FromRequest<AppState>>::from_request(req, &s)
        .await
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "expected a multipart/form-data body with a field named file, or a JSON body with a url ({})",
                e.body_text()
            ))
        })?;
    let limit = s.settings.imports.max_upload_bytes;
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::BadRequest(format!("multipart: {}", e.body_text()))
        }
    };
    // The fields in any order: `file` (streamed to object storage as it arrives, never held
    // whole, refused past the limit) and `mapping`.
    let bucket = s.settings.object_store.buckets.imports.clone();
    let mut file_name = None::<String>;
    let mut mapping = None::<serde_json::Value>;
    let mut stored: Option<(String, usize, String)> = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") if stored.is_none() => {
                file_name = field.file_name().map(str::to_owned);
                let key = format!(
                    "{}/{}.{}",
                    Utc::now().format("%Y/%m/%d"),
                    uuid::Uuid::now_v7(),
                    extension(file_name.as_deref())
                );
                // The body goes to the store through a channel of a few chunks: the store
                // writes while the client sends, and a slow store slows the upload.
                let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
                let body: pm_storage::object_store::ByteStream =
                    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
                        rx.recv().await.map(|item| (item, rx))
                    }));
                let put = s.objects.put(&bucket, &key, body, None);
                let read = async {
                    let mut sha = Sha256::new();
                    let mut size = 0usize;
                    loop {
                        let chunk = match field.chunk().await {
                            Ok(Some(c)) => c,
                            Ok(None) => break,
                            Err(e) => {
                                let _ = tx.send(Err(std::io::Error::other("upload interrupted"))).await;
                                return Err(multipart_error(e));
                            }
                        };
                        if size + chunk.len() > limit {
                            let _ = tx.send(Err(std::io::Error::other("upload too large"))).await;
                            return Err(ApiError::TooLarge { limit });
                        }
                        size += chunk.len();
                        sha.update(&chunk);
                        if tx.send(Ok(chunk)).await.is_err() {
                            // The store stopped reading: its own error says why.
                            break;
                        }
                    }
                    drop(tx);
                    Ok((size, hex::encode(sha.finalize())))
                };
                let (put, read) = tokio::join!(put, read);
                let (size, sha256) = match (read, put) {
                    (Ok(r), Ok(_)) => r,
                    (Err(e), _) => {
                        let _ = s.objects.delete(&bucket, &key).await;
                        return Err(e);
                    }
                    (Ok(_), Err(e)) => {
                        let _ = s.objects.delete(&bucket, &key).await;
                        return Err(e.into());
                    }
                };
                if size == 0 {
                    let _ = s.objects.delete(&bucket, &key).await;
                    return Err(ApiError::invalid("file", "the file is empty"));
                }
                stored = Some((key, size, sha256));
            }
            Some("mapping") => {
                let parsed = match field.text().await {
                    Ok(text) => parse_mapping(&text),
                    Err(e) => Err(multipart_error(e)),
                };
                match parsed {
                    Ok(m) => mapping = Some(m),
                    Err(e) => {
                        // Nothing is imported: the file stored before this field goes too.
                        if let Some((key, ..)) = &stored {
                            let _ = s.objects.delete(&bucket, key).await;
                        }
                        return Err(e);
                    }
                }
            }
            _ => {}
        }
    }
    let Some((key, size, sha256)) = stored else {
        return Err(ApiError::invalid(
            "file",
            "a multipart field named file is required",
        ));
    };
    let mut payload = options;
    payload["bucket"] = serde_json::json!(bucket);
    payload["key"] = serde_json::json!(key);
    payload["file_name"] = serde_json::json!(file_name);
    payload["size"] = serde_json::json!(size);
    payload["sha256"] = serde_json::json!(sha256);
    payload["mapping"] = serde_json::json!(mapping);
    enqueue_import(&s, &who, supplier_id, payload).await
}

/// Queues an import job for a supplier: its group is the supplier, so one supplier's imports
/// run one at a time, in order.
async fn enqueue_import(
    s: &AppState,
    who: &Principal,
    supplier_id: uuid::Uuid,
    payload: serde_json::Value,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let new = NewJob {
        kind: pm_actors::jobs::import::KIND.into(),
        payload,
        group_key: Some(format!("supplier:{supplier_id}")),
        priority: 0,
        max_attempts: None,
        delay: None,
        created_by: who.user_id(),
    };
    let job = s.actors.jobs.gate(Queue::Imports).send(EnqueueJob(new)).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// An import from a URL.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UrlImport {
    /// `http://` or `https://`: fetched by the import job (at most the upload limit, within
    /// `imports.fetch_timeout_secs`; a failure to fetch is retried with the job layer's
    /// backoff, a 4xx answer is not).
    url: String,
    /// Column header → field, as with an upload.
    #[schema(value_type = Option<Object>)]
    mapping: Option<serde_json::Value>,
}

/// A URL an import may fetch: HTTP(S), with a host, not naming a loopback, private or
/// link-local address unless `imports.fetch_private_addresses`, and URL imports turned on.
fn check_url(settings: &pm_config::ImportSettings, raw: &str) -> Result<url::Url, ApiError> {
    if !settings.url_sources {
        return Err(ApiError::invalid(
            "url",
            "imports from a url are turned off (imports.url_sources)",
        ));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| ApiError::invalid("url", format!("not a url: {e}")))?;
    super::outbound_url(
        &url,
        settings.fetch_private_addresses,
        "imports.fetch_private_addresses",
    )
    .map_err(|r| ApiError::invalid("url", r))?;
    Ok(url)
}

#[utoipa::path(
    get,
    path = "/imports/jobs/{id}",
    tag = "imports",
    operation_id = "get_import_job",
    summary = "An import job: status, progress, counters, the file's detected format",
    description = "Its creator or an admin; anyone else gets 404. The result carries \
        `counters` (`rows_read`, `created`, `updated`, `unchanged`, `superseded`, `rejected`, \
        `prices_changed`, `stocks_changed`), `file` (format, encoding, delimiter, sheet, header \
        line, headers, the suggested mapping), `duration_ms` and `rows_per_sec`.",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses((status = 200, description = "The job.", body = ImportJob), NotFound),
)]
async fn job(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ImportJob>, ApiError> {
    let job = import_job(&s, &who, &id).await?;
    Ok(Json(import_view(&s, job).await?))
}

#[utoipa::path(
    get,
    path = "/imports/jobs/{id}/errors",
    tag = "imports",
    operation_id = "list_import_errors",
    summary = "The rows an import rejected, in file order",
    description = "Each has its `line` (the physical line of a text file or the row of a \
        sheet, 1-based, the header counted), `column`, `value`, `code`, `message` and the row's \
        cells as they were (`raw`).",
    params(("id" = Uuid, Path, description = "The job's id."), PageQuery),
    responses((status = 200, description = "A page of rejected rows.", body = Page<ImportError>), NotFound),
)]
async fn errors(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<ImportError>>, ApiError> {
    let job = import_job(&s, &who, &id).await?;
    let msg = ListImportErrors {
        job_id: job.id,
        limit: page_limit(q.limit)?,
        cursor: q.cursor,
    };
    Ok(Json(s.actors.stores.imports.send(msg).await?))
}

#[utoipa::path(
    get,
    path = "/imports/jobs/{id}/errors.csv",
    tag = "imports",
    operation_id = "import_errors_csv",
    summary = "The rejected rows as a CSV to fix and send again",
    description = "The file's header with `line` and `reason` columns added, then each rejected \
        row's cells as they were in the file, in file order. Streamed.",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The rejects.", content_type = "text/csv", body = String),
        NotFound,
    ),
)]
async fn errors_csv(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use futures::StreamExt;
    let job = import_job(&s, &who, &id).await?;
    let headers: Vec<String> = job.result.as_ref().map_or_else(Vec::new, |r| {
        r["file"]["headers"]
            .as_array()
            .map(|h| h.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    });
    let first = csv_line(headers.iter().map(String::as_str).chain(["line", "reason"]));
    let imports = s.actors.stores.imports.clone();
    let job_id = job.id;
    let width = headers.len();
    // One page of rejects per chunk: memory stays at a page whatever their number.
    let pages = futures::stream::unfold(
        (Some(None::<String>), imports),
        move |(cursor, imports)| async move {
            let cursor = cursor?;
            let msg = ListImportErrors {
                job_id,
                limit: 500,
                cursor,
            };
            let page = match imports.send(msg).await {
                Ok(p) => p,
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (None, imports))),
            };
            let mut chunk = String::new();
            for e in &page.items {
                let mut cells: Vec<String> = e.raw.clone();
                cells.resize(width.max(cells.len()), String::new());
                let reason = match &e.column {
                    Some(c) => format!("{}: {} ({c})", e.code, e.message),
                    None => format!("{}: {}", e.code, e.message),
                };
                let line = e.line.to_string();
                chunk.push_str(&csv_line(
                    cells
                        .iter()
                        .map(String::as_str)
                        .chain([line.as_str(), reason.as_str()]),
                ));
            }
            let next = page.next_cursor.map(Some);
            Some((Ok(bytes::Bytes::from(chunk)), (next, imports)))
        },
    );
    let body =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(first)) }).chain(pages);
    let name = format!("attachment; filename=\"import-{job_id}-rejects.csv\"");
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// One CSV record: fields quoted when they hold a delimiter, a quote or a line break.
pub(crate) fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\n', '\r', ';']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_lines_quote_what_needs_it() {
        let l = super::csv_line(["a", "b,c", "say \"hi\"", "two\nlines"].into_iter());
        assert_eq!(l, "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
    }

    #[test]
    fn extensions_are_kept_only_when_plain() {
        assert_eq!(super::extension(Some("Tarif 2026.CSV")), "csv");
        assert_eq!(super::extension(Some("a.xlsx")), "xlsx");
        assert_eq!(super::extension(Some("../../etc/passwd")), "bin");
        assert_eq!(super::extension(Some("noext")), "bin");
        assert_eq!(super::extension(None), "bin");
    }
}

#[utoipa::path(
    post,
    path = "/imports/jobs/{id}/rollback",
    tag = "imports",
    operation_id = "rollback_import_job",
    summary = "Undo an import",
    description = "The catalog values the import changed go back to what they were before it \
        (prices and stocks from their history, products and offers from the import's journal), \
        and the products it created go to the trash, unless someone changed them since: those \
        are kept and counted. Once per job; the job must have finished (succeeded). Needs \
        `jobs:run` and `catalog:write`.",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "Rolled back.", body = pm_storage::catalog::RollbackReport),
        crate::openapi::Conflict,
        NotFound, Forbidden,
    ),
)]
async fn rollback(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<pm_storage::catalog::RollbackReport>, ApiError> {
    who.require(Permission::JobsRun)?;
    who.require(Permission::CatalogWrite)?;
    let job = import_job(&s, &who, &id).await?;
    let conflict = |reason: &str| ApiError::Conflict(crate::error::FieldError::new("id", reason));
    if job.status != pm_storage::jobs::JobStatus::Succeeded {
        return Err(conflict("only a finished (succeeded) import can be rolled back"));
    }
    if job.payload["dry_run"] == serde_json::json!(true) {
        return Err(conflict("a dry run wrote nothing to roll back"));
    }
    let imports = &s.actors.stores.imports;
    if imports
        .send(pm_actors::store::db::RollbackOf(job.id))
        .await?
        .is_some()
    {
        return Err(conflict("this import was already rolled back"));
    }
    let report = s
        .actors
        .stores
        .catalog_bulk
        .send(pm_actors::changes::By::by(
            pm_actors::store::catalog::RollbackImport(job.id),
            who.origin(),
        ))
        .await?;
    let recorded = imports
        .send(pm_actors::store::db::RecordRollback {
            job_id: job.id,
            by: who.user_id(),
            report: serde_json::json!(report),
        })
        .await?;
    if !recorded {
        return Err(conflict("this import was already rolled back"));
    }
    Ok(Json(report))
}

/// The mapping a waiting import is given: exactly one of `mapping`, `template_id`, `template`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GiveMapping {
    /// Column header → field, e.g. `{"Code": "ean", "Libellé": "title"}`.
    #[schema(value_type = Option<Object>)]
    mapping: Option<serde_json::Value>,
    /// A saved template of the supplier.
    template_id: Option<uuid::Uuid>,
    /// A template given inline (see `POST /suppliers/{id}/mapping-templates`).
    #[schema(value_type = Option<Object>)]
    template: Option<serde_json::Value>,
    /// Also save the mapping as the supplier's template under this name.
    save_as: Option<String>,
}

#[utoipa::path(
    post,
    path = "/imports/jobs/{id}/mapping",
    tag = "imports",
    operation_id = "give_import_mapping",
    summary = "Give a waiting import its mapping",
    description = "An import whose columns could not be mapped with confidence waits \
        (`import_status` `awaiting_mapping`; its `progress` lists the file's headers and what is \
        missing). This gives it a mapping by header, a saved template or an inline template, and \
        it runs again. `save_as` also saves it as the supplier's template. Needs `jobs:run`.",
    params(("id" = Uuid, Path, description = "The job's id.")),
    request_body = GiveMapping,
    responses(
        (status = 202, description = "The import runs again with the mapping.", body = ImportJob),
        crate::openapi::Conflict,
        BadRequest, Unprocessable, NotFound, Forbidden,
    ),
)]
async fn give_mapping(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    crate::extract::Json(body): crate::extract::Json<GiveMapping>,
) -> Result<(StatusCode, Json<ImportJob>), ApiError> {
    who.require(Permission::JobsRun)?;
    let job = import_job(&s, &who, &id).await?;
    let given = [
        body.mapping.is_some(),
        body.template_id.is_some(),
        body.template.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiError::invalid(
            "mapping",
            "give exactly one of mapping, template_id or template",
        ));
    }
    if !awaiting_mapping(&job) {
        return Err(ApiError::Conflict(crate::error::FieldError::new(
            "id",
            "this import is not waiting for a mapping",
        )));
    }
    let supplier_id = supplier_of(&job)?;
    let mut payload = job.payload.clone();
    let saved: Option<serde_json::Value> = if let Some(m) = &body.mapping {
        let m = parse_mapping(&m.to_string())?;
        payload["mapping"] = m.clone();
        payload["template_id"] = serde_json::Value::Null;
        payload["template"] = serde_json::Value::Null;
        m.as_object().map(mapping_template)
    } else if let Some(t) = body.template_id {
        supplier_template(&s, t, supplier_id).await?;
        payload["template_id"] = serde_json::json!(t);
        payload["template"] = serde_json::Value::Null;
        None
    } else {
        let t = body.template.clone().unwrap_or_default();
        check_template(&t)?;
        payload["template"] = t.clone();
        Some(t)
    };
    if let (Some(name), Some(template)) = (&body.save_as, saved) {
        check_template(&template)?;
        s.actors
            .stores
            .imports
            .send(pm_actors::store::db::SaveTemplate {
                supplier_id,
                name: name.clone(),
                template,
                by: who.user_id(),
            })
            .await?;
    }
    let resumed = s
        .actors
        .jobs
        .gate(Queue::Imports)
        .send(pm_actors::jobs::ResumeJob {
            job: job.clone(),
            payload,
        })
        .await?;
    if !resumed {
        return Err(ApiError::Conflict(crate::error::FieldError::new(
            "id",
            "this import is not waiting for a mapping any more",
        )));
    }
    let job = import_job(&s, &who, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(import_view(&s, job).await?)))
}

/// The template `t` when it is `supplier_id`'s (a 404 when there is none, a 422 when it is
/// another supplier's).
async fn supplier_template(s: &AppState, t: uuid::Uuid, supplier_id: uuid::Uuid) -> Result<(), ApiError> {
    let template = s
        .actors
        .stores
        .imports
        .send(pm_actors::store::db::GetTemplate(t))
        .await?;
    if template.supplier_id != supplier_id {
        return Err(ApiError::invalid(
            "template_id",
            "the template is another supplier's",
        ));
    }
    Ok(())
}

/// The supplier an import job is for.
fn supplier_of(job: &Job) -> Result<uuid::Uuid, ApiError> {
    job.payload["supplier_id"]
        .as_str()
        .and_then(|s| s.parse::<uuid::Uuid>().ok())
        .ok_or_else(|| ApiError::Internal("an import job without its supplier".into()))
}

/// A mapping by header (`{"Code": "ean"}`) as a template: one rule per column.
fn mapping_template(m: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    let columns: Vec<serde_json::Value> = m
        .iter()
        .map(|(h, f)| serde_json::json!({"source": h, "target": f}))
        .collect();
    serde_json::json!({ "columns": columns })
}

/// A template as the importer reads it, checked: 422 naming the rule that is wrong.
fn check_template(t: &serde_json::Value) -> Result<(), ApiError> {
    let parsed: pm_imports::template::Template =
        serde_json::from_value(t.clone()).map_err(|e| ApiError::invalid("template", e))?;
    parsed.check().map_err(|e| ApiError::invalid("template", e))
}

/// A template to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTemplate {
    /// Unique per supplier; saving the same name again replaces the template.
    name: String,
    /// `{"columns": [{"source": "Code EAN", "target": "ean"}, {"source": "Prix", "target":
    /// "cost_price", "transforms": [{"op": "decimal_comma"}, {"op": "multiply", "by": "1.2"}]}],
    /// "currency": "EUR"}`. Targets: the import fields (`ean`, `sku`, `supplier_sku`, `title`,
    /// `description`, `brand`, `category_path`, `retail_price`, `cost_price`, `sale_price`,
    /// `msrp`, `currency`, `stock`, `image_url`, `parent_sku`) or `{"attribute": name}`.
    /// Transforms: `trim`, `case`, `replace`, `regex_extract`, `split`, `concat`, `default`,
    /// `decimal_comma`, `multiply`, `markup`, `round`, `category_separator`.
    #[schema(value_type = Object)]
    template: serde_json::Value,
}

#[utoipa::path(
    get,
    path = "/suppliers/{id}/mapping-templates",
    tag = "imports",
    operation_id = "list_mapping_templates",
    summary = "A supplier's mapping templates, by name",
    params(("id" = Uuid, Path, description = "The supplier's id.")),
    responses((status = 200, description = "The templates.", body = Vec<pm_storage::imports::MappingTemplate>), NotFound),
)]
async fn list_templates(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<pm_storage::imports::MappingTemplate>>, ApiError> {
    who.require(Permission::ImportsRead)?;
    let supplier_id = path_id("id", &id)?;
    s.actors
        .stores
        .catalog
        .send(GetSupplier { id: supplier_id })
        .await?;
    let list = s
        .actors
        .stores
        .imports
        .send(pm_actors::store::db::ListTemplates(supplier_id))
        .await?;
    Ok(Json(list))
}

#[utoipa::path(
    post,
    path = "/suppliers/{id}/mapping-templates",
    tag = "imports",
    operation_id = "save_mapping_template",
    summary = "Save a supplier's mapping template",
    description = "Checked before it is saved (columns, targets, transforms and their \
        parameters, a title and an EAN or SKU mapped): 422 names the rule that is wrong. Use it \
        with `?template_id=` on an upload. Needs `imports:write`.",
    params(("id" = Uuid, Path, description = "The supplier's id.")),
    request_body = NewTemplate,
    responses(
        (status = 201, description = "Saved.", body = pm_storage::imports::MappingTemplate),
        BadRequest, Unprocessable, NotFound, Forbidden,
    ),
)]
async fn save_template(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    crate::extract::Json(body): crate::extract::Json<NewTemplate>,
) -> Result<(StatusCode, Json<pm_storage::imports::MappingTemplate>), ApiError> {
    who.require(Permission::ImportsWrite)?;
    let supplier_id = path_id("id", &id)?;
    check_template(&body.template)?;
    s.actors
        .stores
        .catalog
        .send(GetSupplier { id: supplier_id })
        .await?;
    let saved = s
        .actors
        .stores
        .imports
        .send(pm_actors::store::db::SaveTemplate {
            supplier_id,
            name: body.name,
            template: body.template,
            by: who.user_id(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

#[utoipa::path(
    get,
    path = "/mapping-templates/{id}",
    tag = "imports",
    operation_id = "get_mapping_template",
    summary = "A mapping template",
    params(("id" = Uuid, Path, description = "The template's id.")),
    responses((status = 200, description = "The template.", body = pm_storage::imports::MappingTemplate), NotFound),
)]
async fn get_template(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<pm_storage::imports::MappingTemplate>, ApiError> {
    who.require(Permission::ImportsRead)?;
    let id = path_id("id", &id)?;
    Ok(Json(
        s.actors
            .stores
            .imports
            .send(pm_actors::store::db::GetTemplate(id))
            .await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/mapping-templates/{id}",
    tag = "imports",
    operation_id = "delete_mapping_template",
    summary = "Delete a mapping template",
    params(("id" = Uuid, Path, description = "The template's id.")),
    responses((status = 204, description = "Deleted."), NotFound, Forbidden),
)]
async fn delete_template(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::ImportsWrite)?;
    let id = path_id("id", &id)?;
    s.actors
        .stores
        .imports
        .send(pm_actors::store::db::DeleteTemplate(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatsQuery {
    /// How many days back, newest first.
    #[param(minimum = 1, maximum = 3660, default = 30)]
    days: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/suppliers/{id}/import-statistics",
    tag = "imports",
    operation_id = "supplier_import_statistics",
    summary = "A supplier's imports per day",
    description = "Jobs, failed jobs, rows read, created, updated, unchanged, rejected and time \
        spent, per UTC day, newest first.",
    params(("id" = Uuid, Path, description = "The supplier's id."), StatsQuery),
    responses((status = 200, description = "The days.", body = Vec<pm_storage::imports::ImportStatistics>), NotFound),
)]
async fn statistics(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Vec<pm_storage::imports::ImportStatistics>>, ApiError> {
    who.require(Permission::ImportsRead)?;
    let supplier_id = path_id("id", &id)?;
    let days = q.days.unwrap_or(30);
    if !(1..=3660).contains(&days) {
        return Err(ApiError::invalid("days", "must be 1 to 3660"));
    }
    s.actors
        .stores
        .catalog
        .send(GetSupplier { id: supplier_id })
        .await?;
    let list = s
        .actors
        .stores
        .imports
        .send(pm_actors::store::db::Statistics { supplier_id, days })
        .await?;
    Ok(Json(list))
}

#[cfg(test)]
mod url_tests {
    use super::check_url;

    fn settings(private: bool, on: bool) -> pm_config::ImportSettings {
        pm_config::ImportSettings {
            max_upload_bytes: 1,
            max_sessions: 1,
            session_idle_secs: 1,
            url_sources: on,
            fetch_timeout_secs: 1,
            fetch_private_addresses: private,
            batches_in_flight: None,
        }
    }

    #[test]
    fn urls_are_checked_before_anything_is_fetched() {
        let public = settings(false, true);
        assert!(check_url(&public, "https://supplier.example/tarif.csv").is_ok());
        for bad in [
            "ftp://supplier.example/a.csv",
            "file:///etc/passwd",
            "http://127.0.0.1:8080/a.csv",
            "http://localhost/a.csv",
            "http://10.1.2.3/a.csv",
            "http://192.168.0.10/a.csv",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/a.csv",
            "http://[fd00::1]/a.csv",
            "nonsense",
        ] {
            assert!(check_url(&public, bad).is_err(), "{bad}");
        }
        assert!(check_url(&settings(true, true), "http://127.0.0.1:8080/a.csv").is_ok());
        assert!(check_url(&settings(true, false), "https://supplier.example/a.csv").is_err());
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogsQuery {
    /// Lines at most, oldest first.
    #[param(minimum = 1, maximum = 10000, default = 1000)]
    limit: Option<u32>,
}

/// An import's log and file.
#[derive(Debug, serde::Serialize, ToSchema)]
struct JobLog {
    /// The file as stored and detected (format, encoding, delimiter, header line, profile).
    file: Option<pm_storage::imports::ImportFile>,
    lines: Vec<pm_storage::imports::ImportLog>,
}

#[utoipa::path(
    get,
    path = "/imports/jobs/{id}/logs",
    tag = "imports",
    operation_id = "import_job_logs",
    summary = "An import's log: its stages, the file found, the mapping used, the outcome",
    params(("id" = Uuid, Path, description = "The job's id."), LogsQuery),
    responses((status = 200, description = "The log and the file.", body = JobLog), NotFound),
)]
async fn logs(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Json<JobLog>, ApiError> {
    let job = import_job(&s, &who, &id).await?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 10000"));
    }
    let imports = &s.actors.stores.imports;
    let lines = imports
        .send(pm_actors::store::db::ImportLogs {
            job_id: job.id,
            limit,
        })
        .await?;
    let file = imports.send(pm_actors::store::db::ImportFileOf(job.id)).await?;
    Ok(Json(JobLog { file, lines }))
}

/// A name to save a job's mapping under.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SaveMapping {
    name: String,
}

#[utoipa::path(
    post,
    path = "/imports/jobs/{id}/template",
    tag = "imports",
    operation_id = "save_import_mapping_as_template",
    summary = "Save the mapping an import used as the supplier's template",
    description = "The mapping the job read its file with: the one given, or the suggestion it \
        went ahead with (recorded in `result.file.suggestion`). Saved under `name` for the \
        supplier (the same name replaces it); use it with `?template_id=` next time. Needs \
        `imports:write`.",
    params(("id" = Uuid, Path, description = "The job's id.")),
    request_body = SaveMapping,
    responses(
        (status = 201, description = "Saved.", body = pm_storage::imports::MappingTemplate),
        crate::openapi::Conflict, Unprocessable, NotFound, Forbidden,
    ),
)]
async fn save_job_mapping(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    crate::extract::Json(body): crate::extract::Json<SaveMapping>,
) -> Result<(StatusCode, Json<pm_storage::imports::MappingTemplate>), ApiError> {
    who.require(Permission::ImportsWrite)?;
    let job = import_job(&s, &who, &id).await?;
    let supplier_id = supplier_of(&job)?;
    let template = if job.payload["template"].is_object() {
        job.payload["template"].clone()
    } else if let Some(m) = job.payload["mapping"].as_object() {
        mapping_template(m)
    } else {
        let suggestion = job
            .result
            .as_ref()
            .map(|r| r["file"]["suggestion"].clone())
            .filter(|v| v["confident"] == serde_json::json!(true))
            .ok_or_else(|| {
                ApiError::Conflict(crate::error::FieldError::new(
                    "id",
                    "this import has no mapping to save yet (it has not read its file, or used a saved template)",
                ))
            })?;
        let columns: Vec<serde_json::Value> = suggestion["columns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| serde_json::json!({"source": c["header"], "target": c["target"]}))
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({ "columns": columns })
    };
    check_template(&template)?;
    let saved = s
        .actors
        .stores
        .imports
        .send(pm_actors::store::db::SaveTemplate {
            supplier_id,
            name: body.name,
            template,
            by: who.user_id(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}
