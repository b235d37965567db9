//! `/api/v1/jobs/{queue}`: the durable job queues (imports, exports, code2asin, media,
//! catalog). Callers with `jobs:run` enqueue jobs and see and cancel their own; admins see and
//! cancel every job.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pm_actors::jobs::{CancelJob, EnqueueJob, GetJob, ListJobs};
use pm_domain::Permission;
use pm_storage::catalog::Page;
use pm_storage::jobs::{CancelOutcome, Job, JobFilter, JobStatus, NewJob, Queue};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::products::parse_id;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{page_limit, Json as Body, Query};
use crate::openapi::{Forbidden, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, enqueue))
        .routes(routes!(one))
        .routes(routes!(cancel))
}

pub(crate) fn parse_queue(s: &str) -> Result<Queue, ApiError> {
    s.parse()
        .map_err(|e: String| ApiError::NotFound(format!("no job queue: {e}")))
}

/// Whether `p` may see (and cancel) `job`: its creator, or an admin.
pub(crate) fn may_see(p: &Principal, job: &Job) -> bool {
    p.can(Permission::Admin) || (job.created_by.is_some() && job.created_by == p.user_id())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = JobCreate)]
struct NewJobBody {
    /// A kind the queue knows (`debug.sleep` when `jobs.debug_kinds` is on).
    kind: String,
    /// The kind's input.
    #[serde(default)]
    payload: serde_json::Value,
    /// Jobs of one group key run one at a time.
    group_key: Option<String>,
    /// Higher runs first; clamped to -1000..1000.
    #[serde(default)]
    priority: i32,
    #[schema(minimum = 1, maximum = 100)]
    max_attempts: Option<u32>,
    /// Not before this many seconds from now.
    delay_secs: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/jobs/{queue}",
    tag = "jobs",
    operation_id = "enqueue_job",
    summary = "Enqueue a job",
    description = "Needs `jobs:run`.",
    params(("queue" = Queue, Path, description = "The queue.")),
    request_body = NewJobBody,
    responses((status = 202, description = "The job, queued.", body = Job), Forbidden, NotFound),
)]
async fn enqueue(
    State(s): State<AppState>,
    p: Principal,
    Path(queue): Path<String>,
    Body(b): Body<NewJobBody>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    p.require(Permission::JobsRun)?;
    let queue = parse_queue(&queue)?;
    if b.max_attempts == Some(0) || b.max_attempts.is_some_and(|m| m > 100) {
        return Err(ApiError::invalid("max_attempts", "must be 1 to 100"));
    }
    let new = NewJob {
        kind: b.kind,
        payload: b.payload,
        group_key: b.group_key,
        priority: b.priority.clamp(-1000, 1000),
        max_attempts: b.max_attempts,
        delay: b.delay_secs.map(std::time::Duration::from_secs),
        created_by: p.user_id(),
    };
    let job = s.actors.jobs.gate(queue).send(EnqueueJob(new)).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[param(value_type = Option<JobStatus>)]
    status: Option<String>,
    kind: Option<String>,
    group_key: Option<String>,
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
    path = "/jobs/{queue}",
    tag = "jobs",
    operation_id = "list_jobs",
    summary = "List jobs, newest first",
    description = "Needs `jobs:run` or `admin`.",
    params(("queue" = Queue, Path, description = "The queue."), ListQuery),
    responses((status = 200, description = "A page of jobs: the caller's own, or everyone's for admins.", body = Page<Job>), Forbidden, NotFound),
)]
async fn list(
    State(s): State<AppState>,
    p: Principal,
    Path(queue): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Job>>, ApiError> {
    p.require(Permission::JobsRun)
        .or_else(|_| p.require(Permission::Admin))?;
    let queue = parse_queue(&queue)?;
    let mut filter = visible_jobs(&p, q.status.as_deref(), q.kind, q.group_key, q.cursor, q.limit)?;
    created_between(&mut filter, q.from.as_deref(), q.to.as_deref())?;
    Ok(Json(s.actors.jobs.gate(queue).send(ListJobs(filter)).await?))
}

/// Narrows a job list to the jobs created in `[from, to)`: each an RFC 3339 time or a day
/// (`YYYY-MM-DD`, UTC; as `to`, that whole day).
pub(crate) fn created_between(
    f: &mut JobFilter,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(), ApiError> {
    let parse =
        |field: &'static str, v: &str, end_of_day: bool| -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
                return Ok(t.with_timezone(&chrono::Utc));
            }
            let day = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time or a day as YYYY-MM-DD"))?;
            let day = if end_of_day {
                day.succ_opt().unwrap_or(day)
            } else {
                day
            };
            Ok(day.and_time(chrono::NaiveTime::MIN).and_utc())
        };
    f.created_from = from.map(|v| parse("from", v, false)).transpose()?;
    f.created_to = to.map(|v| parse("to", v, true)).transpose()?;
    Ok(())
}

/// The filter of a job list as `p` may see it: their own jobs, everyone's for admins.
pub(crate) fn visible_jobs(
    p: &Principal,
    status: Option<&str>,
    kind: Option<String>,
    group_key: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
) -> Result<JobFilter, ApiError> {
    let status = status
        .map(|st| st.parse::<JobStatus>())
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    Ok(JobFilter {
        status,
        kind,
        group_key,
        // Only admins list other people's jobs.
        created_by: if p.can(Permission::Admin) {
            None
        } else {
            Some(p.require_user()?)
        },
        created_from: None,
        created_to: None,
        cursor,
        limit: page_limit(limit)?,
    })
}

pub(crate) async fn fetch(
    s: &AppState,
    p: &Principal,
    queue: &str,
    id: &str,
) -> Result<(Queue, Job), ApiError> {
    let queue = parse_queue(queue)?;
    let id: Uuid = parse_id(id)?;
    let job = s.actors.jobs.gate(queue).send(GetJob(id)).await?;
    if !may_see(p, &job) {
        // Not a 403: whether someone else's job exists is not the caller's business.
        return Err(ApiError::NotFound(format!("job {id} not found")));
    }
    Ok((queue, job))
}

#[utoipa::path(
    get,
    path = "/jobs/{queue}/{id}",
    tag = "jobs",
    operation_id = "get_job",
    summary = "Get a job",
    description = "Its creator or an admin; anyone else gets 404.",
    params(("queue" = Queue, Path, description = "The queue."), ("id" = Uuid, Path, description = "The job's id.")),
    responses((status = 200, description = "The job.", body = Job), NotFound),
)]
async fn one(
    State(s): State<AppState>,
    p: Principal,
    Path((queue, id)): Path<(String, String)>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(fetch(&s, &p, &queue, &id).await?.1))
}

#[derive(Serialize, ToSchema)]
#[schema(as = JobCancelled)]
pub(crate) struct Cancelled {
    pub(crate) outcome: CancelOutcome,
    pub(crate) job: Job,
}

#[utoipa::path(
    post,
    path = "/jobs/{queue}/{id}/cancel",
    tag = "jobs",
    operation_id = "cancel_job",
    summary = "Cancel a job",
    description = "Its creator or an admin; anyone else gets 404.",
    params(("queue" = Queue, Path, description = "The queue."), ("id" = Uuid, Path, description = "The job's id.")),
    responses((status = 200, description = "Cancelled before it started.", body = Cancelled), (status = 202, description = "Running: its worker is told to stop.", body = Cancelled), (status = 409, description = "It had already finished; nothing changed.", body = Cancelled), NotFound),
)]
async fn cancel(
    State(s): State<AppState>,
    p: Principal,
    Path((queue, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Cancelled>), ApiError> {
    let (queue, job) = fetch(&s, &p, &queue, &id).await?;
    cancel_job(&s, queue, job.id).await
}

/// Cancels a job the caller may see, answering as `POST …/cancel` does.
pub(crate) async fn cancel_job(
    s: &AppState,
    queue: Queue,
    id: Uuid,
) -> Result<(StatusCode, Json<Cancelled>), ApiError> {
    let (outcome, job) = s.actors.jobs.gate(queue).send(CancelJob(id)).await?;
    let status = match outcome {
        CancelOutcome::Cancelled => StatusCode::OK,
        CancelOutcome::Requested => StatusCode::ACCEPTED,
        CancelOutcome::AlreadyFinished => StatusCode::CONFLICT,
    };
    Ok((status, Json(Cancelled { outcome, job })))
}
