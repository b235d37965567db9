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
}

#[utoipa::path(
    get,
    path = "/imports/jobs",
    tag = "imports",
    operation_id = "list_import_jobs",
    summary = "Import jobs, newest first",
    description = "The caller's own, or everyone's for admins; by supplier and status.",
    params(ListQuery),
    responses((status = 200, description = "A page of import jobs.", body = Page<Job>)),
)]
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Job>>, ApiError> {
    let filter = super::jobs::visible_jobs(
        &who,
        q.status.as_deref(),
        Some(pm_actors::jobs::import::KIND.into()),
        q.supplier_id.map(|id| format!("supplier:{id}")),
        q.cursor,
        q.limit,
    )?;
    let page = s
        .actors
        .jobs
        .gate(Queue::Imports)
        .send(pm_actors::jobs::ListJobs(filter))
        .await?;
    Ok(Json(page))
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
    /// Spreadsheets: the sheet's name (default: the first sheet).
    sheet: Option<String>,
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
    description = "Multipart, field `file`. The file is stored, then imported by a job on the \
        imports queue (one supplier's imports run one at a time, in order); follow it at \
        `/imports/jobs/{id}` or over the WebSocket (`jobs.imports.<id>`). Needs `jobs:run`.",
    params(("id" = Uuid, Path, description = "The supplier's id."), UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
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
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    who.require(Permission::JobsRun)?;
    // Not a multipart body at all: said as problem+json, like every other error.
    let mut form = form.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a multipart/form-data body with a field named file ({})",
            e.body_text()
        ))
    })?;
    let supplier_id = path_id("id", &id)?;
    let dry_run = match q.dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("dry_run", "must be true or false")),
    };
    if q.skip_rows.is_some_and(|n| n > 1000) {
        return Err(ApiError::invalid("skip_rows", "must be 0 to 1000"));
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
    let limit = s.settings.imports.max_upload_bytes;
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::BadRequest(format!("multipart: {}", e.body_text()))
        }
    };
    // The fields in any order: `file` (streamed into memory up to the limit) and `mapping`.
    let (mut body, mut file_name, mut mapping) = (None::<Vec<u8>>, None::<String>, None::<serde_json::Value>);
    let mut sha = Sha256::new();
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                file_name = field.file_name().map(str::to_owned);
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if buf.len() + chunk.len() > limit {
                        return Err(ApiError::TooLarge { limit });
                    }
                    sha.update(&chunk);
                    buf.extend_from_slice(&chunk);
                }
                body = Some(buf);
            }
            Some("mapping") => {
                let text = field.text().await.map_err(multipart_error)?;
                mapping = Some(parse_mapping(&text)?);
            }
            _ => {}
        }
    }
    let Some(body) = body else {
        return Err(ApiError::invalid(
            "file",
            "a multipart field named file is required",
        ));
    };
    if body.is_empty() {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let size = body.len();
    let sha256 = hex::encode(sha.finalize());
    let key = format!(
        "{}/{}.{}",
        Utc::now().format("%Y/%m/%d"),
        uuid::Uuid::now_v7(),
        extension(file_name.as_deref())
    );
    let bucket = s.settings.object_store.buckets.imports.clone();
    let stream: pm_storage::object_store::ByteStream =
        Box::pin(futures::stream::iter(vec![Ok(bytes::Bytes::from(body))]));
    s.objects.put(&bucket, &key, stream, None).await?;
    let payload = serde_json::json!({
        "supplier_id": supplier_id, "bucket": bucket, "key": key, "file_name": file_name,
        "size": size, "sha256": sha256, "dry_run": dry_run, "encoding": q.encoding,
        "delimiter": q.delimiter, "skip_rows": q.skip_rows, "sheet": q.sheet, "mapping": mapping,
    });
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
    responses((status = 200, description = "The job.", body = Job), NotFound),
)]
async fn job(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(import_job(&s, &who, &id).await?))
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
fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
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
