//! Code2ASIN: Amazon ASINs for EANs.
//!
//! - `POST /api/v1/code2asin/jobs`: a job over a list of EANs (up to
//!   `code2asin.max_eans_per_job`) or a catalog selection; answered at once with the job.
//! - `GET /api/v1/code2asin/jobs[/{id}]`: status (`queued`, `paused`, `running`, `succeeded`,
//!   `failed`, `cancelled`) and counters; `.../results` one item per EAN, `.../results.csv`
//!   the same as CSV; `.../logs`.
//! - `POST /api/v1/code2asin/jobs/{id}/pause|resume|cancel`, and
//!   `.../results/{ean}/choose` for a person's choice among candidates (written to the product).
//! - `/api/v1/code2asin/accounts`: seller accounts (admins; secrets stored encrypted, never
//!   returned). `/api/v1/code2asin/statistics`, `/api/v1/code2asin/suppliers/{id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pm_actors::changes::{By, Origin};
use pm_actors::code2asin::job::{Payload, Selection, KIND};
use pm_actors::jobs::{EnqueueJob, ResumeJob};
use pm_actors::store::code2asin as msg;
use pm_domain::{Asin, Gtin, Permission};
use pm_storage::catalog::Page;
use pm_storage::code2asin::{
    Code2asinLog, Code2asinStatistics, EanResult, JobCounters, ResultStatus, SupplierConfig,
};
use pm_storage::core::amazon::{AmazonAccount, NewAmazonAccount};
use pm_storage::jobs::{Job, JobStatus, NewJob, Queue};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::catalog::path_id;
use crate::auth::Principal;
use crate::error::{ApiError, FieldError};
use crate::extract::{page_limit, Json as Body, Query};
use crate::openapi::{Conflict, Forbidden, NotFound, Unprocessable};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs, create_job))
        .routes(routes!(get_job))
        .routes(routes!(results))
        .routes(routes!(results_csv))
        .routes(routes!(logs))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(cancel))
        .routes(routes!(choose))
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, delete_account))
        .routes(routes!(statistics))
        .routes(routes!(get_supplier_config, put_supplier_config))
}

/// A job as this API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Code2asinJob {
    #[serde(flatten)]
    pub job: Job,
    /// `queued`, `paused`, `running`, `succeeded`, `failed` or `cancelled`.
    pub code2asin_status: &'static str,
    pub paused: bool,
    pub counters: JobCounters,
    pub account: Option<String>,
    pub marketplace: Option<String>,
}

async fn view(s: &AppState, job: Job) -> Result<Code2asinJob, ApiError> {
    let state = s.actors.stores.code2asin.send(msg::JobStateOf(job.id)).await?;
    let paused = state.as_ref().is_some_and(|st| st.paused);
    let code2asin_status = match job.status {
        JobStatus::Queued if paused => "paused",
        JobStatus::Running if paused => "running",
        JobStatus::Queued => "queued",
        JobStatus::Running => "running",
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "failed",
        JobStatus::Cancelled => "cancelled",
    };
    let (counters, account, marketplace) = match state {
        Some(st) => (
            st.counters,
            Some(st.account_key).filter(|a| !a.is_empty()),
            Some(st.marketplace_id).filter(|m| !m.is_empty()),
        ),
        None => (JobCounters::default(), None, None),
    };
    Ok(Code2asinJob {
        job,
        code2asin_status,
        paused,
        counters,
        account,
        marketplace,
    })
}

/// The job `id` if the caller may see it.
async fn fetch(s: &AppState, who: &Principal, id: &str) -> Result<Job, ApiError> {
    who.require(Permission::CatalogRead)?;
    let (_, job) = super::jobs::fetch(s, who, "code2asin", id).await?;
    if job.kind != KIND {
        return Err(ApiError::NotFound(format!("code2asin job {id} not found")));
    }
    Ok(job)
}

/// A new job: `eans` or `selection`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewJobBody {
    /// EANs (GTIN-8/12/13/14). An invalid one is kept and gets an `error` result saying why;
    /// a repeated one is asked once.
    #[serde(default)]
    eans: Option<Vec<String>>,
    /// Or the catalog's live products with an EAN matching every field given.
    #[serde(default)]
    selection: Option<SelectionBody>,
    /// The account (default: `[amazon]` in the settings, else the account marked default).
    account_id: Option<Uuid>,
    /// Marketplace code (`FR`, `DE`, ...) or id, instead of the account's.
    marketplace: Option<String>,
    /// Matches at or above this confidence are written to the products (default
    /// `code2asin.auto_apply_threshold`, 0.85).
    #[schema(minimum = 0.0, maximum = 1.0)]
    auto_apply_threshold: Option<f64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SelectionBody {
    /// Products this supplier offers.
    supplier_id: Option<Uuid>,
    /// Only products without an ASIN.
    #[serde(default)]
    without_asin: bool,
    /// Products in this category.
    category_id: Option<Uuid>,
}

#[utoipa::path(
    post,
    path = "/code2asin/jobs",
    tag = "code2asin",
    operation_id = "create_code2asin_job",
    summary = "Look EANs up on Amazon",
    description = "Queued on the code2asin queue and answered at once. Each EAN gets a result: \
        `matched`, `multiple` (every candidate), `not_found` or `error`; confident matches are \
        written to the products' ASIN. Needs `catalog:write`.",
    request_body = NewJobBody,
    responses(
        (status = 202, description = "Queued.", body = Code2asinJob),
        Forbidden, Unprocessable,
    ),
)]
async fn create_job(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<NewJobBody>,
) -> Result<(StatusCode, Json<Code2asinJob>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let max = s.settings.code2asin.max_eans_per_job;
    let eans = b.eans.unwrap_or_default();
    match (&b.selection, eans.is_empty()) {
        (Some(_), false) => return Err(ApiError::invalid("eans", "give eans or a selection, not both")),
        (None, true) => return Err(ApiError::invalid("eans", "give at least one ean, or a selection")),
        _ => {}
    }
    if eans.len() > max {
        return Err(ApiError::invalid(
            "eans",
            format!("at most {max} eans per job, got {}", eans.len()),
        ));
    }
    if let Some((i, _)) = eans.iter().enumerate().find(|(_, e)| e.len() > 64) {
        return Err(ApiError::invalid(
            format!("eans[{i}]"),
            "longer than 64 characters",
        ));
    }
    if let Some(t) = b.auto_apply_threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(ApiError::invalid(
                "auto_apply_threshold",
                "must be between 0 and 1",
            ));
        }
    }
    if let Some(m) = &b.marketplace {
        pm_amazon::Marketplace::parse(m).map_err(|e| ApiError::invalid("marketplace", e))?;
    }
    match b.account_id {
        Some(id) => {
            if s.actors
                .stores
                .core
                .send(pm_actors::store::core::GetAmazonAccount { id })
                .await?
                .is_none()
            {
                return Err(ApiError::invalid("account_id", "no such amazon account"));
            }
        }
        None => {
            let a = &s.settings.amazon;
            let settings_account =
                a.client_id.is_some() && a.client_secret.is_some() && a.refresh_token.is_some();
            if !settings_account {
                let accounts = s
                    .actors
                    .stores
                    .core
                    .send(pm_actors::store::core::ListAmazonAccounts)
                    .await?;
                if !accounts.iter().any(|a| a.is_default) {
                    return Err(ApiError::invalid(
                        "account_id",
                        "no amazon account: set [amazon] in the settings, or add one at /api/v1/code2asin/accounts (is_default)",
                    ));
                }
            }
        }
    }
    let selection = b.selection.map(|sel| Selection {
        supplier_id: sel.supplier_id,
        without_asin: sel.without_asin,
        category_id: sel.category_id,
    });
    let group_key = selection
        .as_ref()
        .and_then(|s| s.supplier_id)
        .map(|id| format!("supplier:{id}"));
    let payload = Payload {
        eans,
        selection,
        account_id: b.account_id,
        marketplace: b.marketplace,
        auto_apply_threshold: b.auto_apply_threshold,
    };
    let new = NewJob {
        kind: KIND.into(),
        payload: serde_json::to_value(&payload).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        group_key,
        priority: 0,
        max_attempts: None,
        delay: None,
        created_by: who.user_id(),
    };
    let job = s.actors.jobs.gate(Queue::Code2asin).send(EnqueueJob(new)).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&s, job).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[param(value_type = Option<JobStatus>)]
    status: Option<String>,
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    cursor: Option<String>,
    /// Created at or after: an RFC 3339 time, or a day `YYYY-MM-DD` (from its start, UTC).
    from: Option<String>,
    /// Created before: an RFC 3339 time, or a day `YYYY-MM-DD` (that day included, UTC).
    to: Option<String>,
}

#[utoipa::path(
    get,
    path = "/code2asin/jobs",
    tag = "code2asin",
    operation_id = "list_code2asin_jobs",
    summary = "Code2ASIN jobs, newest first",
    description = "The caller's jobs (every job for admins).",
    params(ListQuery),
    responses((status = 200, description = "A page of jobs.", body = Page<Code2asinJob>)),
)]
async fn list_jobs(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Code2asinJob>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let mut filter = super::jobs::visible_jobs(
        &who,
        q.status.as_deref(),
        Some(KIND.into()),
        None,
        q.cursor,
        q.limit,
    )?;
    super::jobs::created_between(&mut filter, q.from.as_deref(), q.to.as_deref())?;
    let page = s
        .actors
        .jobs
        .gate(Queue::Code2asin)
        .send(pm_actors::jobs::ListJobs(filter))
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for job in page.items {
        items.push(view(&s, job).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/code2asin/jobs/{id}",
    tag = "code2asin",
    operation_id = "get_code2asin_job",
    summary = "A Code2ASIN job: status and counters",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses((status = 200, description = "The job.", body = Code2asinJob), NotFound),
)]
async fn get_job(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Code2asinJob>, ApiError> {
    let job = fetch(&s, &who, &id).await?;
    Ok(Json(view(&s, job).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ResultsQuery {
    /// Only results of this status.
    #[param(pattern = "^(pending|matched|multiple|not_found|error)$")]
    status: Option<String>,
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    cursor: Option<String>,
}

fn parse_status(s: Option<&str>) -> Result<Option<ResultStatus>, ApiError> {
    s.map(|v| {
        ResultStatus::parse(v).ok_or_else(|| {
            ApiError::invalid("status", "must be pending, matched, multiple, not_found or error")
        })
    })
    .transpose()
}

#[utoipa::path(
    get,
    path = "/code2asin/jobs/{id}/results",
    tag = "code2asin",
    operation_id = "list_code2asin_results",
    summary = "One item per EAN of the job, in the job's order",
    description = "`status`: `pending` (not asked yet), `matched` (one ASIN), `multiple` (every \
        candidate with title, brand, sales rank and image; `asin` is the preferred one when one \
        is clearly better, with the reason), `not_found`, `error` (the reason). `applied`: \
        written to the product.",
    params(("id" = Uuid, Path, description = "The job's id."), ResultsQuery),
    responses((status = 200, description = "A page of results.", body = Page<EanResult>), NotFound),
)]
async fn results(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<ResultsQuery>,
) -> Result<Json<Page<EanResult>>, ApiError> {
    let status = parse_status(q.status.as_deref())?;
    let job = fetch(&s, &who, &id).await?;
    let m = msg::ListResults {
        job_id: job.id,
        status,
        limit: page_limit(q.limit)?,
        cursor: q.cursor,
    };
    Ok(Json(s.actors.stores.code2asin.send(m).await?))
}

#[utoipa::path(
    get,
    path = "/code2asin/jobs/{id}/results.csv",
    tag = "code2asin",
    operation_id = "code2asin_results_csv",
    summary = "The job's results as CSV",
    description = "`ean,status,asin,confidence,applied,candidates,title,brand,sales_rank,reason`: \
        one line per EAN in the job's order; `candidates` lists every candidate ASIN separated \
        by `|`. Streamed.",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses((status = 200, description = "The results.", content_type = "text/csv", body = String), NotFound),
)]
async fn results_csv(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use futures::StreamExt;
    let job = fetch(&s, &who, &id).await?;
    let store = s.actors.stores.code2asin.clone();
    let job_id = job.id;
    let first = "ean,status,asin,confidence,applied,candidates,title,brand,sales_rank,reason\r\n".to_owned();
    let pages = futures::stream::unfold((Some(None::<String>), store), move |(cursor, store)| async move {
        let cursor = cursor?;
        let m = msg::ListResults {
            job_id,
            status: None,
            limit: 500,
            cursor,
        };
        let page = match store.send(m).await {
            Ok(p) => p,
            Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (None, store))),
        };
        let mut chunk = String::new();
        for r in &page.items {
            let chosen = r
                .asin
                .as_deref()
                .and_then(|a| r.asins.iter().find(|c| c.asin == a))
                .or_else(|| r.asins.first());
            let candidates = r
                .asins
                .iter()
                .map(|c| c.asin.as_str())
                .collect::<Vec<_>>()
                .join("|");
            let fields = [
                r.ean.clone(),
                r.status.as_str().to_owned(),
                r.asin.clone().unwrap_or_default(),
                r.confidence.map(|c| format!("{c:.2}")).unwrap_or_default(),
                r.applied.to_string(),
                candidates,
                chosen.and_then(|c| c.title.clone()).unwrap_or_default(),
                chosen.and_then(|c| c.brand.clone()).unwrap_or_default(),
                chosen
                    .and_then(|c| c.sales_rank)
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                r.reason.clone().unwrap_or_default(),
            ];
            chunk.push_str(&super::imports::csv_line(fields.iter().map(String::as_str)));
        }
        let next = page.next_cursor.map(Some);
        Some((Ok(bytes::Bytes::from(chunk)), (next, store)))
    });
    let body =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(first)) }).chain(pages);
    let name = format!("attachment; filename=\"code2asin-{job_id}.csv\"");
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

#[utoipa::path(
    get,
    path = "/code2asin/jobs/{id}/logs",
    tag = "code2asin",
    operation_id = "code2asin_job_logs",
    summary = "The job's log, oldest first",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses((status = 200, description = "Log lines.", body = Vec<Code2asinLog>), NotFound),
)]
async fn logs(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Code2asinLog>>, ApiError> {
    let job = fetch(&s, &who, &id).await?;
    let m = msg::Code2asinLogs {
        job_id: job.id,
        limit: 1000,
    };
    Ok(Json(s.actors.stores.code2asin.send(m).await?))
}

/// Sets the pause switch of a job the caller may write to, unless it has finished.
async fn switch_pause(s: &AppState, who: &Principal, id: &str, paused: bool) -> Result<Job, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let job = fetch(s, who, id).await?;
    if job.status.is_finished() {
        return Err(ApiError::Conflict(FieldError::new("id", "this job has finished")));
    }
    s.actors
        .stores
        .code2asin
        .send(msg::SetPaused {
            job_id: job.id,
            paused,
        })
        .await?;
    Ok(job)
}

#[utoipa::path(
    post,
    path = "/code2asin/jobs/{id}/pause",
    tag = "code2asin",
    operation_id = "pause_code2asin_job",
    summary = "Pause a job",
    description = "A running job stops after the chunk of EANs it is on (what it found is kept) \
        and waits; a queued one waits without starting. `resume` goes on from the first EAN not \
        answered.",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "Paused (or pausing).", body = Code2asinJob),
        Conflict,
        NotFound,
    ),
)]
async fn pause(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Code2asinJob>, ApiError> {
    let job = switch_pause(&s, &who, &id, true).await?;
    Ok(Json(view(&s, job).await?))
}

#[utoipa::path(
    post,
    path = "/code2asin/jobs/{id}/resume",
    tag = "code2asin",
    operation_id = "resume_code2asin_job",
    summary = "Resume a paused job",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "Resumed.", body = Code2asinJob),
        Conflict,
        NotFound,
    ),
)]
async fn resume(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Code2asinJob>, ApiError> {
    let job = switch_pause(&s, &who, &id, false).await?;
    // A job that stopped for the pause waits, not due: make it due again. One still running
    // (it had not reached the end of its chunk) simply goes on.
    let payload = job.payload.clone();
    s.actors
        .jobs
        .gate(Queue::Code2asin)
        .send(ResumeJob {
            job: job.clone(),
            payload,
        })
        .await?;
    let job = s
        .actors
        .jobs
        .gate(Queue::Code2asin)
        .send(pm_actors::jobs::GetJob(job.id))
        .await?;
    Ok(Json(view(&s, job).await?))
}

#[utoipa::path(
    post,
    path = "/code2asin/jobs/{id}/cancel",
    tag = "code2asin",
    operation_id = "cancel_code2asin_job",
    summary = "Cancel a job",
    description = "Queued or paused: cancelled at once. Running: it stops after the chunk it is \
        on; what it found stays.",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "Cancelled.", body = super::jobs::Cancelled),
        (status = 202, description = "Running: it is told to stop.", body = super::jobs::Cancelled),
        (status = 409, description = "It had already finished.", body = super::jobs::Cancelled),
        NotFound,
    ),
)]
async fn cancel(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<super::jobs::Cancelled>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let job = fetch(&s, &who, &id).await?;
    super::jobs::cancel_job(&s, Queue::Code2asin, job.id).await
}

/// A person's choice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChooseBody {
    /// One of the EAN's candidates.
    asin: String,
}

#[utoipa::path(
    post,
    path = "/code2asin/jobs/{id}/results/{ean}/choose",
    tag = "code2asin",
    operation_id = "choose_code2asin_asin",
    summary = "Choose the ASIN of an EAN among its candidates",
    description = "Written to the product of that EAN and recorded on the result.",
    params(("id" = Uuid, Path, description = "The job's id."), ("ean" = String, Path, description = "The EAN.")),
    request_body = ChooseBody,
    responses((status = 200, description = "The result.", body = EanResult), NotFound, Unprocessable),
)]
async fn choose(
    State(s): State<AppState>,
    who: Principal,
    Path((id, ean)): Path<(String, String)>,
    Body(b): Body<ChooseBody>,
) -> Result<Json<EanResult>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let job = fetch(&s, &who, &id).await?;
    let gtin = Gtin::parse(&ean).map_err(|e| ApiError::invalid("ean", e))?;
    let asin = Asin::parse(&b.asin).map_err(|e| ApiError::invalid("asin", e))?;
    let key = gtin.as_str().to_owned();
    let found = s
        .actors
        .stores
        .code2asin
        .send(msg::ResultOf {
            job_id: job.id,
            ean: key.clone(),
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("ean {key} is not in job {}", job.id)))?;
    if !found.asins.iter().any(|c| c.asin == asin.as_str()) {
        return Err(ApiError::invalid("asin", "not one of this ean's candidates"));
    }
    let origin = Origin::system("code2asin");
    s.actors
        .stores
        .catalog
        .send(pm_actors::store::catalog::SetAsins(vec![(gtin, asin.clone())]).by(origin))
        .await?;
    let m = msg::Choose {
        job_id: job.id,
        ean: key.clone(),
        asin: asin.as_str().to_owned(),
        by: who.user_id(),
    };
    s.actors.stores.code2asin.send(m).await?;
    let updated = s
        .actors
        .stores
        .code2asin
        .send(msg::ResultOf {
            job_id: job.id,
            ean: key,
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("result vanished".into()))?;
    Ok(Json(updated))
}

/// A seller account to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    /// Unique.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// LWA client id.
    #[schema(min_length = 1, max_length = 500)]
    client_id: String,
    /// LWA client secret: stored encrypted, never returned.
    #[schema(min_length = 1, max_length = 2000)]
    client_secret: String,
    /// LWA refresh token: stored encrypted, never returned.
    #[schema(min_length = 1, max_length = 4000)]
    refresh_token: String,
    /// Marketplace code (`FR`) or id.
    marketplace: String,
    /// SP-API host instead of the marketplace's regional one (a stand-in, say).
    endpoint: Option<String>,
    /// LWA token endpoint instead of `amazon.lwa_endpoint`.
    lwa_endpoint: Option<String>,
    /// Requests per second (default `amazon.rate_per_sec`).
    #[schema(exclusive_minimum = 0.0, maximum = 1000.0)]
    rate_per_sec: Option<f64>,
    #[schema(minimum = 1, maximum = 1000)]
    burst: Option<i32>,
    /// The account jobs use when they name none.
    #[serde(default)]
    is_default: bool,
}

fn check_url(field: &str, v: &Option<String>) -> Result<(), ApiError> {
    if let Some(u) = v {
        let parsed = url::Url::parse(u).map_err(|e| ApiError::invalid(field, e))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::invalid(field, "must be http or https"));
        }
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/code2asin/accounts",
    tag = "code2asin",
    operation_id = "create_amazon_account",
    summary = "Add an Amazon seller account (admins)",
    request_body = NewAccountBody,
    responses(
        (status = 201, description = "Added; secrets are not returned.", body = AmazonAccount),
        Conflict,
        Forbidden, Unprocessable,
    ),
)]
async fn create_account(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<NewAccountBody>,
) -> Result<(StatusCode, Json<AmazonAccount>), ApiError> {
    who.require(Permission::Admin)?;
    let mut errors = Vec::new();
    for (field, v, max) in [
        ("name", &b.name, 100),
        ("client_id", &b.client_id, 500),
        ("client_secret", &b.client_secret, 2000),
        ("refresh_token", &b.refresh_token, 4000),
    ] {
        if v.trim().is_empty() || v.len() > max || v.contains('\0') {
            errors.push(FieldError::new(field, format!("must be 1 to {max} characters")));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let marketplace =
        pm_amazon::Marketplace::parse(&b.marketplace).map_err(|e| ApiError::invalid("marketplace", e))?;
    check_url("endpoint", &b.endpoint)?;
    check_url("lwa_endpoint", &b.lwa_endpoint)?;
    if b.rate_per_sec.is_some_and(|r| !(r > 0.0 && r <= 1000.0)) {
        return Err(ApiError::invalid(
            "rate_per_sec",
            "must be above 0 and at most 1000",
        ));
    }
    if b.burst.is_some_and(|n| !(1..=1000).contains(&n)) {
        return Err(ApiError::invalid("burst", "must be 1 to 1000"));
    }
    let cipher = &s.actors.secrets;
    let account = NewAmazonAccount {
        name: b.name.trim().to_owned(),
        client_id: b.client_id.trim().to_owned(),
        client_secret_enc: cipher.encrypt(&b.client_secret),
        refresh_token_enc: cipher.encrypt(&b.refresh_token),
        marketplace_id: marketplace.id().to_owned(),
        endpoint: b.endpoint,
        lwa_endpoint: b.lwa_endpoint,
        rate_per_sec: b.rate_per_sec,
        burst: b.burst,
        is_default: b.is_default,
        created_by: who.user_id(),
    };
    let created = s
        .actors
        .stores
        .core
        .send(pm_actors::store::core::CreateAmazonAccount { account })
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/code2asin/accounts",
    tag = "code2asin",
    operation_id = "list_amazon_accounts",
    summary = "Amazon seller accounts (admins), without their secrets",
    responses((status = 200, description = "The accounts.", body = Vec<AmazonAccount>), Forbidden),
)]
async fn list_accounts(
    State(s): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<AmazonAccount>>, ApiError> {
    who.require(Permission::Admin)?;
    Ok(Json(
        s.actors
            .stores
            .core
            .send(pm_actors::store::core::ListAmazonAccounts)
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/code2asin/accounts/{id}",
    tag = "code2asin",
    operation_id = "get_amazon_account",
    summary = "An Amazon seller account (admins), without its secrets",
    params(("id" = Uuid, Path, description = "The account's id.")),
    responses((status = 200, description = "The account.", body = AmazonAccount), NotFound),
)]
async fn get_account(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<AmazonAccount>, ApiError> {
    who.require(Permission::Admin)?;
    let id = path_id("id", &id)?;
    let found = s
        .actors
        .stores
        .core
        .send(pm_actors::store::core::GetAmazonAccount { id })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("amazon account {id} not found")))?;
    Ok(Json(found.account))
}

#[utoipa::path(
    delete,
    path = "/code2asin/accounts/{id}",
    tag = "code2asin",
    operation_id = "delete_amazon_account",
    summary = "Remove an Amazon seller account (admins)",
    params(("id" = Uuid, Path, description = "The account's id.")),
    responses((status = 204, description = "Removed."), NotFound),
)]
async fn delete_account(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::Admin)?;
    let id = path_id("id", &id)?;
    s.actors
        .stores
        .core
        .send(pm_actors::store::core::DeleteAmazonAccount { id })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatsQuery {
    /// A supplier's id; unset: jobs over plain EAN lists.
    supplier_id: Option<Uuid>,
    /// Days back, newest first.
    #[param(minimum = 1, maximum = 3660, default = 30)]
    days: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/code2asin/statistics",
    tag = "code2asin",
    operation_id = "code2asin_statistics",
    summary = "Matching per supplier and day: requests, EANs, match rate, throttles",
    params(StatsQuery),
    responses((status = 200, description = "Newest day first.", body = Vec<Code2asinStatistics>)),
)]
async fn statistics(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Vec<Code2asinStatistics>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let days = q.days.unwrap_or(30);
    if !(1..=3660).contains(&days) {
        return Err(ApiError::invalid("days", "must be 1 to 3660"));
    }
    let m = msg::Code2asinStats {
        supplier: q
            .supplier_id
            .map_or_else(|| "none".to_owned(), |id| id.to_string()),
        days,
    };
    Ok(Json(s.actors.stores.code2asin.send(m).await?))
}

#[utoipa::path(
    get,
    path = "/code2asin/suppliers/{id}",
    tag = "code2asin",
    operation_id = "get_code2asin_supplier_config",
    summary = "A supplier's Code2ASIN settings",
    params(("id" = Uuid, Path, description = "The supplier's id.")),
    responses((status = 200, description = "The settings.", body = SupplierConfig), NotFound),
)]
async fn get_supplier_config(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<SupplierConfig>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = path_id("id", &id)?;
    let found = s
        .actors
        .stores
        .code2asin
        .send(msg::SupplierConfigOf(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no code2asin settings for supplier {id}")))?;
    Ok(Json(found))
}

/// A supplier's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SupplierConfigBody {
    account_id: Option<Uuid>,
    marketplace: Option<String>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    auto_apply_threshold: Option<f64>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(
    put,
    path = "/code2asin/suppliers/{id}",
    tag = "code2asin",
    operation_id = "put_code2asin_supplier_config",
    summary = "Set a supplier's Code2ASIN settings",
    params(("id" = Uuid, Path, description = "The supplier's id.")),
    request_body = SupplierConfigBody,
    responses((status = 200, description = "The settings.", body = SupplierConfig), Unprocessable),
)]
async fn put_supplier_config(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<SupplierConfigBody>,
) -> Result<Json<SupplierConfig>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    if let Some(m) = &b.marketplace {
        pm_amazon::Marketplace::parse(m).map_err(|e| ApiError::invalid("marketplace", e))?;
    }
    if b.auto_apply_threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(ApiError::invalid(
            "auto_apply_threshold",
            "must be between 0 and 1",
        ));
    }
    let c = SupplierConfig {
        supplier_id: id,
        account_id: b.account_id,
        marketplace: b.marketplace,
        auto_apply_threshold: b.auto_apply_threshold,
        enabled: b.enabled,
    };
    s.actors
        .stores
        .code2asin
        .send(msg::PutSupplierConfig(c.clone()))
        .await?;
    Ok(Json(c))
}
