//! Durable job queues, the replacement for the seeds' Celery queues: one table per database
//! (`import_jobs` in imports, `export_jobs` in exports, `code2asin_jobs`, `media_processing_jobs`,
//! `catalog_jobs`), so that a job lives and commits beside the data it works on.
//!
//! A job is claimed by one worker at a time under a **lease** (`lease_owner`, `lease_expires_at`):
//! on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so that instances sharing a database never
//! claim the same row, and on SQLite inside `BEGIN IMMEDIATE`, which takes the write lock
//! before reading. The worker renews the lease while the job runs; a job whose lease expired
//! (its process died, its worker crashed) is claimed again by the next claim of any instance.
//! Every write a worker makes about its job names the owner it claimed with, so once a lease
//! has been taken over, the old holder's progress, result or failure is refused (**fencing**):
//! a job finishes exactly once. Running a job is at least once: a handler whose run was cut
//! off is run again, so handlers are idempotent (upserts, not inserts).
//!
//! Recoverable failures are retried after `min(base × factor^(failures − 1), max_delay)`
//! (the seeds: 60 s × 5^n, capped at 4 h, at most 5 attempts); a lease that expired counts as
//! an attempt, so a job that kills its process every time ends failed instead of looping.
//!
//! Times come from a [`Clock`] and are stored as milliseconds since the epoch, so both backends
//! compare them the same way and tests can drive time with a [`ManualClock`]. Instances that
//! share a database must have synchronised clocks; the lease (30 s by default) is the margin.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pm_config::Database;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::catalog::Page;
use crate::{with_conn, Backend, Db, StoreError};

/// How long a job put aside for input ([`JobQueue::park`]) stays not due: 30 days.
pub const PARK_MS: i64 = 30 * 24 * 3600 * 1000;

/// The five queues and the database each lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    Imports,
    Exports,
    Code2asin,
    Media,
    Catalog,
}

impl Queue {
    pub const ALL: [Queue; 5] = [
        Queue::Imports,
        Queue::Exports,
        Queue::Code2asin,
        Queue::Media,
        Queue::Catalog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Imports => "imports",
            Queue::Exports => "exports",
            Queue::Code2asin => "code2asin",
            Queue::Media => "media",
            Queue::Catalog => "catalog",
        }
    }

    pub fn database(self) -> Database {
        match self {
            Queue::Imports => Database::Imports,
            Queue::Exports => Database::Exports,
            Queue::Code2asin => Database::Code2asin,
            Queue::Media => Database::Media,
            Queue::Catalog => Database::Catalog,
        }
    }

    /// The job table; a constant, so it may be formatted into SQL.
    pub fn table(self) -> &'static str {
        match self {
            Queue::Imports => "import_jobs",
            Queue::Exports => "export_jobs",
            Queue::Code2asin => "code2asin_jobs",
            Queue::Media => "media_processing_jobs",
            Queue::Catalog => "catalog_jobs",
        }
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Queue {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Queue::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| format!("unknown queue {s:?}: one of imports, exports, code2asin, media, catalog"))
    }
}

/// Where the queue reads the time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}

/// A clock that moves only when told to: retries and lease expiry without waiting.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start.timestamp_millis())))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(ms(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// When a failed job is tried again, and how many times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub factor: u32,
    pub max_delay: Duration,
    /// Attempts in all, the first one included, unless a job sets its own.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// The seeds' policy: `min(60 s × 5^n, 4 h)`, at most 5 attempts.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(60),
            factor: 5,
            max_delay: Duration::from_secs(4 * 3600),
            max_attempts: 5,
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `failures` failed ones (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(32);
        let factor = u64::from(self.factor).saturating_pow(exp);
        let secs = self.base.as_secs_f64() * factor as f64;
        Duration::from_secs_f64(secs.min(self.max_delay.as_secs_f64()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl FromStr for JobStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown job status {s:?}"))
    }
}

/// One job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: Uuid,
    pub queue: Queue,
    pub kind: String,
    pub payload: Value,
    pub group_key: Option<String>,
    pub priority: i32,
    pub status: JobStatus,
    /// Attempts started so far (the running one included).
    pub attempts: u32,
    pub max_attempts: u32,
    /// Not claimed before this time.
    pub run_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    pub progress: Option<Value>,
    pub result: Option<Value>,
    pub last_error: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    kind: String,
    payload: String,
    group_key: Option<String>,
    priority: i32,
    status: String,
    attempts: i32,
    max_attempts: i32,
    run_at: i64,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    cancel_requested: bool,
    progress: Option<String>,
    result: Option<String>,
    last_error: Option<String>,
    created_by: Option<Uuid>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    updated_at: i64,
}

fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("job json: {e}")))
}

impl JobRow {
    fn into_job(self, queue: Queue) -> Result<Job, StoreError> {
        Ok(Job {
            id: self.id,
            queue,
            kind: self.kind,
            payload: json(&self.payload)?,
            group_key: self.group_key,
            priority: self.priority,
            status: self.status.parse().map_err(StoreError::Corrupt)?,
            attempts: self.attempts.max(0) as u32,
            max_attempts: self.max_attempts.max(0) as u32,
            run_at: time(self.run_at),
            lease_owner: self.lease_owner,
            lease_expires_at: self.lease_expires_at.map(time),
            cancel_requested: self.cancel_requested,
            progress: self.progress.as_deref().map(json).transpose()?,
            result: self.result.as_deref().map(json).transpose()?,
            last_error: self.last_error,
            created_by: self.created_by,
            created_at: time(self.created_at),
            started_at: self.started_at.map(time),
            finished_at: self.finished_at.map(time),
            updated_at: time(self.updated_at),
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, Default)]
pub struct NewJob {
    pub kind: String,
    pub payload: Value,
    pub group_key: Option<String>,
    /// Higher runs first.
    pub priority: i32,
    /// Overrides the queue's policy.
    pub max_attempts: Option<u32>,
    /// Not before now + this.
    pub delay: Option<Duration>,
    pub created_by: Option<Uuid>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            ..Self::default()
        }
    }
}

/// A claimed job and the owner token every later write about it must name.
#[derive(Debug, Clone)]
pub struct Lease {
    pub job: Job,
    pub owner: String,
}

/// Whether a worker still holds its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Held {
        cancel_requested: bool,
    },
    /// Another claim took the job over (the lease had expired), or it was finished: stop.
    Lost,
}

/// What a reported failure led to.
#[derive(Debug, Clone, PartialEq)]
pub enum FailOutcome {
    /// Queued again, not before `at`.
    Retry { at: DateTime<Utc> },
    /// Failed for good (attempts exhausted, or not recoverable).
    Failed,
    /// Cancellation had been asked for: cancelled rather than retried.
    Cancelled,
    /// The lease was no longer ours: nothing recorded.
    Lost,
}

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// It had not started: cancelled now.
    Cancelled,
    /// It is running: its worker is told at its next lease renewal and stops.
    Requested,
    /// It had already finished; nothing changed.
    AlreadyFinished,
}

/// Filters of a job list; the newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
    pub group_key: Option<String>,
    pub created_by: Option<Uuid>,
    /// Created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// The last id of the previous page.
    pub cursor: Option<String>,
    pub limit: u32,
}

/// The queue's current depth, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Queued and due: waiting for a worker.
    pub ready: u64,
    /// Queued for later (a retry's backoff, a delayed job).
    pub scheduled: u64,
    pub running: u64,
    /// How long the oldest ready job has waited, in milliseconds.
    pub oldest_ready_ms: u64,
}

const COLUMNS: &str = "id, kind, payload, group_key, priority, status, attempts, max_attempts, run_at, \
    lease_owner, lease_expires_at, cancel_requested, progress, result, last_error, created_by, \
    created_at, started_at, finished_at, updated_at";

/// One queue: its table, clock and retry policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JobQueue {
    db: Db,
    queue: Queue,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
}

impl JobQueue {
    /// `db` must be the queue's own database ([`Queue::database`]).
    pub fn new(db: Db, queue: Queue, clock: Arc<dyn Clock>, policy: RetryPolicy) -> Self {
        debug_assert_eq!(db.database, queue.database());
        Self {
            db,
            queue,
            clock,
            policy,
        }
    }

    pub fn queue(&self) -> Queue {
        self.queue
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    pub fn now(&self) -> DateTime<Utc> {
        time(self.clock.now_ms())
    }

    fn t(&self) -> &'static str {
        self.queue.table()
    }

    pub async fn enqueue(&self, new: NewJob) -> Result<Job, StoreError> {
        if new.kind.is_empty() || new.kind.len() > 100 {
            return Err(StoreError::Invalid {
                field: "kind",
                reason: "must be 1 to 100 characters".into(),
            });
        }
        let now = self.clock.now_ms();
        let id = Uuid::now_v7();
        let max_attempts = new.max_attempts.unwrap_or(self.policy.max_attempts).max(1);
        let run_at = now + new.delay.map(ms).unwrap_or(0);
        // RETURNING: the row as inserted (a worker may claim it the moment it is committed).
        let sql = format!(
            "INSERT INTO {} (id, kind, payload, group_key, priority, status, attempts, max_attempts, \
             run_at, cancel_requested, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, FALSE, $8, $9, $9) RETURNING {COLUMNS}",
            self.t()
        );
        let payload = new.payload.to_string();
        let row: JobRow = with_conn!(self.db, |conn| {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(&new.kind)
                .bind(&payload)
                .bind(&new.group_key)
                .bind(new.priority)
                .bind(max_attempts as i32)
                .bind(run_at)
                .bind(new.created_by)
                .bind(now)
                .fetch_one(&mut *conn)
                .await?
        });
        row.into_job(self.queue)
    }

    pub async fn get(&self, id: Uuid) -> Result<Job, StoreError> {
        self.find(id).await?.ok_or_else(|| StoreError::NotFound {
            entity: "job",
            id: id.to_string(),
        })
    }

    pub async fn find(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM {} WHERE id = $1", self.t());
        let row: Option<JobRow> = with_conn!(self.db, |conn| {
            sqlx::query_as(&sql).bind(id).fetch_optional(&mut *conn).await?
        });
        row.map(|r| r.into_job(self.queue)).transpose()
    }

    /// Jobs, newest first.
    pub async fn list(&self, f: &JobFilter) -> Result<Page<Job>, StoreError> {
        let before = match f.cursor.as_deref() {
            Some(c) => Uuid::try_parse(c).map_err(|_| StoreError::BadCursor)?,
            None => Uuid::max(),
        };
        let mut sql = format!("SELECT {COLUMNS} FROM {} WHERE id < $1", self.t());
        let mut n = 1;
        let mut clause = |col: &str, sql: &mut String| {
            n += 1;
            sql.push_str(&format!(" AND {col} ${n}"));
        };
        if f.status.is_some() {
            clause("status =", &mut sql);
        }
        if f.kind.is_some() {
            clause("kind =", &mut sql);
        }
        if f.group_key.is_some() {
            clause("group_key =", &mut sql);
        }
        if f.created_by.is_some() {
            clause("created_by =", &mut sql);
        }
        if f.created_from.is_some() {
            clause("created_at >=", &mut sql);
        }
        if f.created_to.is_some() {
            clause("created_at <", &mut sql);
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", i64::from(f.limit) + 1));
        let rows: Vec<JobRow> = with_conn!(self.db, |conn| {
            let mut q = sqlx::query_as(&sql).bind(before);
            if let Some(s) = f.status {
                q = q.bind(s.as_str());
            }
            if let Some(k) = &f.kind {
                q = q.bind(k);
            }
            if let Some(g) = &f.group_key {
                q = q.bind(g);
            }
            if let Some(u) = f.created_by {
                q = q.bind(u);
            }
            if let Some(t) = f.created_from {
                q = q.bind(t.timestamp_millis());
            }
            if let Some(t) = f.created_to {
                q = q.bind(t.timestamp_millis());
            }
            q.fetch_all(&mut *conn).await?
        });
        let jobs = rows
            .into_iter()
            .map(|r| r.into_job(self.queue))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::keyset::page(jobs, f.limit, |j| j.id))
    }

    /// Takes the next due job for `worker`, or `None` when there is nothing to do. Jobs whose
    /// lease expired are taken over; those among them out of attempts, or asked to cancel, are
    /// closed instead (failed, cancelled).
    pub async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Lease>, StoreError> {
        let now = self.clock.now_ms();
        let owner = format!("{worker}#{}", &Uuid::new_v4().simple().to_string()[..12]);
        let expires = now + ms(lease);
        let t = self.t();
        let close_cancelled = format!(
            "UPDATE {t} SET status = 'cancelled', finished_at = $1, updated_at = $1, lease_expires_at = NULL \
             WHERE status = 'running' AND lease_expires_at <= $1 AND cancel_requested"
        );
        let close_exhausted = format!(
            "UPDATE {t} SET status = 'failed', finished_at = $1, updated_at = $1, lease_expires_at = NULL, \
             last_error = 'its worker stopped without finishing it (lease expired) on the last attempt' \
             WHERE status = 'running' AND lease_expires_at <= $1 AND attempts >= max_attempts"
        );
        let due = "((status = 'queued' AND run_at <= $1) OR (status = 'running' AND lease_expires_at <= $1))";
        // One job of a group at a time, oldest first: a job whose group has a running job, or
        // an older job due, waits (a supplier's imports run one by one, in order). A job put
        // aside for input (not due) does not hold its group up.
        let group_free = format!(
            "(j.group_key IS NULL OR NOT EXISTS (SELECT 1 FROM {t} o WHERE o.group_key = j.group_key \
             AND o.id <> j.id AND (o.status = 'running' OR (o.status = 'queued' AND o.run_at <= $1 AND o.id < j.id))))"
        );
        let take = |target: &str| {
            format!(
                "UPDATE {t} SET status = 'running', attempts = attempts + 1, lease_owner = $2, \
                 lease_expires_at = $3, started_at = COALESCE(started_at, $1), updated_at = $1, \
                 progress = NULL WHERE id = {target} RETURNING {COLUMNS}"
            )
        };
        let row: Option<JobRow> = match &self.db.pool {
            crate::Pool::Postgres(p) => {
                let mut conn = self.db.acquire(p).await?;
                sqlx::query(&close_cancelled)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(&close_exhausted)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                // SKIP LOCKED: a row another instance is claiming right now is passed over,
                // not waited for, so claims never queue up behind each other.
                let pick = format!(
                    "(SELECT id FROM {t} j WHERE {due} AND {group_free} ORDER BY priority DESC, run_at, id \
                     LIMIT 1 FOR UPDATE OF j SKIP LOCKED)"
                );
                sqlx::query_as(&take(&pick))
                    .bind(now)
                    .bind(&owner)
                    .bind(expires)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            crate::Pool::Sqlite(p) => {
                let mut conn = self.db.acquire(p).await?;
                // BEGIN IMMEDIATE takes the write lock before the read, so two claims cannot
                // both read the same row as free.
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let body = async {
                    sqlx::query(&close_cancelled)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(&close_exhausted)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    let pick =
                        format!("SELECT id FROM {t} j WHERE {due} AND {group_free} ORDER BY priority DESC, run_at, id LIMIT 1");
                    let id: Option<Uuid> = sqlx::query_scalar(&pick)
                        .bind(now)
                        .fetch_optional(&mut *conn)
                        .await?;
                    match id {
                        None => Ok::<_, sqlx::Error>(None),
                        Some(id) => {
                            sqlx::query_as(&take("$4"))
                                .bind(now)
                                .bind(&owner)
                                .bind(expires)
                                .bind(id)
                                .fetch_optional(&mut *conn)
                                .await
                        }
                    }
                }
                .await;
                let end = if body.is_ok() { "COMMIT" } else { "ROLLBACK" };
                sqlx::query(end).execute(&mut *conn).await?;
                body?
            }
        };
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Lease {
            job: row.into_job(self.queue)?,
            owner,
        }))
    }

    /// Extends the lease and records `progress` (when given). Tells whether the job is still
    /// ours and whether its cancellation was asked for.
    pub async fn renew(
        &self,
        lease: &Lease,
        duration: Duration,
        progress: Option<&Value>,
    ) -> Result<LeaseState, StoreError> {
        let now = self.clock.now_ms();
        let sql = format!(
            "UPDATE {} SET lease_expires_at = $1, updated_at = $2, progress = COALESCE($3, progress) \
             WHERE id = $4 AND lease_owner = $5 AND status = 'running' RETURNING cancel_requested",
            self.t()
        );
        let progress = progress.map(Value::to_string);
        let row: Option<bool> = with_conn!(self.db, |conn| {
            sqlx::query_scalar(&sql)
                .bind(now + ms(duration))
                .bind(now)
                .bind(&progress)
                .bind(lease.job.id)
                .bind(&lease.owner)
                .fetch_optional(&mut *conn)
                .await?
        });
        Ok(match row {
            Some(cancel_requested) => LeaseState::Held { cancel_requested },
            None => LeaseState::Lost,
        })
    }

    /// Records success. `false` if the lease was lost (nothing recorded).
    pub async fn complete(&self, lease: &Lease, result: &Value) -> Result<bool, StoreError> {
        self.finish(lease, "'succeeded'", Some(result.to_string()), None)
            .await
    }

    /// Records that the job stopped because its cancellation was asked for.
    pub async fn finish_cancelled(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.finish(lease, "'cancelled'", None, None).await
    }

    async fn finish(
        &self,
        lease: &Lease,
        status: &str,
        result: Option<String>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let sql = format!(
            "UPDATE {} SET status = {status}, result = COALESCE($1, result), last_error = COALESCE($2, last_error), \
             finished_at = $3, updated_at = $3, lease_expires_at = NULL \
             WHERE id = $4 AND lease_owner = $5 AND status = 'running'",
            self.t()
        );
        let done = with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(&result)
                .bind(error)
                .bind(now)
                .bind(lease.job.id)
                .bind(&lease.owner)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Hands a job back untried, at shutdown: queued again at once, the interrupted attempt not
    /// counted. `false` if the lease was no longer ours.
    pub async fn release(&self, lease: &Lease) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let sql = format!(
            "UPDATE {} SET status = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
             run_at = $1, updated_at = $1, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
            self.t()
        );
        let done = with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(now)
                .bind(lease.job.id)
                .bind(&lease.owner)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Puts a running job aside until a person gives what it needs: queued but not due (for
    /// [`PARK_MS`]), the attempt not counted, `details` kept as its progress (what the API shows
    /// and what [`JobQueue::resume`] checks). `false` if the lease was no longer ours.
    pub async fn park(&self, lease: &Lease, details: &Value) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let sql = format!(
            "UPDATE {} SET status = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
             run_at = $1, updated_at = $2, lease_owner = NULL, lease_expires_at = NULL, progress = $3 \
             WHERE id = $4 AND lease_owner = $5 AND status = 'running' AND NOT cancel_requested",
            self.t()
        );
        let details = details.to_string();
        let done = with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(now + PARK_MS)
                .bind(now)
                .bind(&details)
                .bind(lease.job.id)
                .bind(&lease.owner)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Gives a parked job its input: its payload replaced by `payload`, due now. `false` when
    /// the job is not waiting any more (resumed by someone else, cancelled).
    pub async fn resume(&self, job: &Job, payload: &Value) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let sql = format!(
            "UPDATE {} SET payload = $1, run_at = $2, updated_at = $2, progress = NULL \
             WHERE id = $3 AND status = 'queued' AND updated_at = $4 AND run_at > $2",
            self.t()
        );
        let payload = payload.to_string();
        let updated_at = job.updated_at.timestamp_millis();
        let done = with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(&payload)
                .bind(now)
                .bind(job.id)
                .bind(updated_at)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Records a failure: queued again after the backoff when `retryable` and attempts remain
    /// (and no cancellation was asked for), failed for good otherwise.
    pub async fn fail(&self, lease: &Lease, error: &str, retryable: bool) -> Result<FailOutcome, StoreError> {
        let now = self.clock.now_ms();
        let error: String = error.chars().take(4000).collect();
        if retryable && lease.job.attempts < lease.job.max_attempts {
            let at = now + ms(self.policy.delay(lease.job.attempts));
            let sql = format!(
                "UPDATE {} SET status = 'queued', run_at = $1, last_error = $2, updated_at = $3, \
                 lease_expires_at = NULL WHERE id = $4 AND lease_owner = $5 AND status = 'running' \
                 AND NOT cancel_requested",
                self.t()
            );
            let done = with_conn!(self.db, |conn| {
                sqlx::query(&sql)
                    .bind(at)
                    .bind(&error)
                    .bind(now)
                    .bind(lease.job.id)
                    .bind(&lease.owner)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
            });
            if done == 1 {
                return Ok(FailOutcome::Retry { at: time(at) });
            }
        }
        let status = "CASE WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END";
        if !self.finish(lease, status, None, Some(&error)).await? {
            return Ok(FailOutcome::Lost);
        }
        Ok(match self.get(lease.job.id).await?.status {
            JobStatus::Cancelled => FailOutcome::Cancelled,
            _ => FailOutcome::Failed,
        })
    }

    /// Cancels a job: at once if it has not started, at its worker's next renewal if it runs.
    pub async fn cancel(&self, id: Uuid) -> Result<(CancelOutcome, Job), StoreError> {
        let now = self.clock.now_ms();
        let t = self.t();
        let queued = format!(
            "UPDATE {t} SET status = 'cancelled', cancel_requested = TRUE, finished_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'queued'"
        );
        let running = format!(
            "UPDATE {t} SET cancel_requested = TRUE, updated_at = $1 WHERE id = $2 AND status = 'running'"
        );
        let (a, b) = with_conn!(self.db, |conn| {
            let a = sqlx::query(&queued)
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            let b = if a == 0 {
                sqlx::query(&running)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
            } else {
                0
            };
            (a, b)
        });
        let job = self.get(id).await?;
        let outcome = match (a, b) {
            (1, _) => CancelOutcome::Cancelled,
            (_, 1) => CancelOutcome::Requested,
            _ => CancelOutcome::AlreadyFinished,
        };
        Ok((outcome, job))
    }

    /// Ready, scheduled and running jobs, and the age of the oldest ready one.
    pub async fn depth(&self) -> Result<QueueDepth, StoreError> {
        let now = self.clock.now_ms();
        let sql = format!(
            "SELECT status, CASE WHEN run_at <= $1 THEN 1 ELSE 0 END AS due, COUNT(*) AS n, MIN(run_at) AS oldest \
             FROM {} WHERE status IN ('queued', 'running') GROUP BY 1, 2",
            self.t()
        );
        let rows: Vec<(String, i32, i64, Option<i64>)> = with_conn!(self.db, |conn| {
            sqlx::query_as(&sql).bind(now).fetch_all(&mut *conn).await?
        });
        let mut d = QueueDepth::default();
        for (status, due, n, oldest) in rows {
            let n = n.max(0) as u64;
            match (status.as_str(), due) {
                ("running", _) => d.running += n,
                ("queued", 1) => {
                    d.ready += n;
                    d.oldest_ready_ms = oldest.map_or(0, |o| (now - o).max(0) as u64);
                }
                _ => d.scheduled += n,
            }
        }
        Ok(d)
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::backends;
    use serde_json::json;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    async fn queue(env: &crate::testing::TestEnv, clock: Arc<ManualClock>) -> JobQueue {
        let db = Db::open(&env.settings, Database::Imports).await.unwrap();
        JobQueue::new(db, Queue::Imports, clock, policy())
    }

    const LEASE: Duration = Duration::from_secs(30);

    #[test]
    fn the_backoff_is_the_seeds() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=6).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(secs, vec![60, 300, 1500, 7500, 14400, 14400]);
    }

    #[tokio::test]
    async fn a_job_is_claimed_once_renewed_and_completed_once() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            let job = q.enqueue(NewJob::new("test", json!({"n": 1}))).await.unwrap();
            assert_eq!(job.status, JobStatus::Queued);
            let lease = q.claim("w1", LEASE).await.unwrap().expect(env.label);
            assert_eq!(lease.job.id, job.id);
            assert_eq!(lease.job.attempts, 1);
            assert!(q.claim("w2", LEASE).await.unwrap().is_none(), "{}", env.label);
            let st = q.renew(&lease, LEASE, Some(&json!({"done": 5}))).await.unwrap();
            assert_eq!(
                st,
                LeaseState::Held {
                    cancel_requested: false
                }
            );
            assert_eq!(q.get(job.id).await.unwrap().progress, Some(json!({"done": 5})));
            assert!(q.complete(&lease, &json!({"ok": true})).await.unwrap());
            assert!(!q.complete(&lease, &json!({"ok": 2})).await.unwrap());
            let done = q.get(job.id).await.unwrap();
            assert_eq!(done.status, JobStatus::Succeeded);
            assert_eq!(done.result, Some(json!({"ok": true})));
            assert!(done.finished_at.is_some());
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn a_group_runs_one_job_at_a_time_in_order_and_a_parked_job_waits_for_its_input() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            let in_group = |n: u32| NewJob {
                group_key: Some("supplier:a".into()),
                ..NewJob::new("test", json!({ "n": n }))
            };
            let a = q.enqueue(in_group(1)).await.unwrap();
            let b = q.enqueue(in_group(2)).await.unwrap();
            let other = q.enqueue(NewJob::new("test", json!({}))).await.unwrap();
            let la = q.claim("w1", LEASE).await.unwrap().expect(env.label);
            assert_eq!(la.job.id, a.id, "{}", env.label);
            // B waits for A (same group); the job without a group goes by.
            let lo = q.claim("w2", LEASE).await.unwrap().expect(env.label);
            assert_eq!(lo.job.id, other.id, "{}", env.label);
            assert!(q.claim("w3", LEASE).await.unwrap().is_none(), "{}", env.label);
            // A waits for input: it no longer holds its group up, and is not due.
            assert!(q.park(&la, &json!({"awaiting": "mapping"})).await.unwrap());
            let parked = q.get(a.id).await.unwrap();
            assert_eq!(
                (parked.status, parked.attempts),
                (JobStatus::Queued, 0),
                "{}",
                env.label
            );
            assert_eq!(parked.progress, Some(json!({"awaiting": "mapping"})));
            let lb = q.claim("w3", LEASE).await.unwrap().expect(env.label);
            assert_eq!(lb.job.id, b.id, "{}", env.label);
            assert!(q.complete(&lb, &json!({})).await.unwrap());
            assert!(q.claim("w3", LEASE).await.unwrap().is_none(), "{}", env.label);
            // Given its input, A is due again, with its new payload; resuming twice does nothing.
            assert!(q.resume(&parked, &json!({"n": 1, "mapping": {}})).await.unwrap());
            assert!(!q.resume(&parked, &json!({"n": 1})).await.unwrap());
            let again = q.claim("w1", LEASE).await.unwrap().expect(env.label);
            assert_eq!((again.job.id, again.job.attempts), (a.id, 1), "{}", env.label);
            assert_eq!(again.job.payload, json!({"n": 1, "mapping": {}}));
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            let job = q.enqueue(NewJob::new("test", json!({}))).await.unwrap();
            let old = q.claim("w1", LEASE).await.unwrap().unwrap();
            clock.advance(LEASE + Duration::from_millis(1));
            let new = q.claim("w2", LEASE).await.unwrap().expect(env.label);
            assert_eq!(new.job.id, job.id);
            assert_eq!(new.job.attempts, 2);
            assert_eq!(q.renew(&old, LEASE, None).await.unwrap(), LeaseState::Lost);
            assert!(!q.complete(&old, &json!("old")).await.unwrap());
            assert_eq!(q.fail(&old, "x", true).await.unwrap(), FailOutcome::Lost);
            assert!(q.complete(&new, &json!("new")).await.unwrap());
            assert_eq!(q.get(job.id).await.unwrap().result, Some(json!("new")));
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn retries_follow_the_backoff_then_fail_for_good() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            let job = q
                .enqueue(NewJob {
                    max_attempts: Some(3),
                    ..NewJob::new("test", json!({}))
                })
                .await
                .unwrap();
            for attempt in 1..=2u32 {
                let lease = q.claim("w", LEASE).await.unwrap().unwrap();
                assert_eq!(lease.job.attempts, attempt);
                let out = q.fail(&lease, "supplier ftp down", true).await.unwrap();
                let wait = q.policy().delay(attempt);
                assert_eq!(out, FailOutcome::Retry { at: q.now() + wait }, "{}", env.label);
                let depth = q.depth().await.unwrap();
                assert_eq!((depth.ready, depth.scheduled), (0, 1));
                // not before its time
                clock.advance(wait - Duration::from_secs(1));
                assert!(q.claim("w", LEASE).await.unwrap().is_none());
                clock.advance(Duration::from_secs(1));
            }
            let lease = q.claim("w", LEASE).await.unwrap().unwrap();
            assert_eq!(lease.job.attempts, 3);
            assert_eq!(
                q.fail(&lease, "still down", true).await.unwrap(),
                FailOutcome::Failed
            );
            let j = q.get(job.id).await.unwrap();
            assert_eq!(j.status, JobStatus::Failed);
            assert_eq!(j.last_error.as_deref(), Some("still down"));
            // a fatal error is not retried
            q.enqueue(NewJob::new("test", json!({}))).await.unwrap();
            let lease = q.claim("w", LEASE).await.unwrap().unwrap();
            assert_eq!(
                q.fail(&lease, "bad file", false).await.unwrap(),
                FailOutcome::Failed
            );
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn a_job_that_kills_its_worker_every_time_ends_failed() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            let job = q
                .enqueue(NewJob {
                    max_attempts: Some(2),
                    ..NewJob::new("test", json!({}))
                })
                .await
                .unwrap();
            for _ in 0..2 {
                q.claim("w", LEASE).await.unwrap().unwrap();
                clock.advance(LEASE * 2);
            }
            assert!(q.claim("w", LEASE).await.unwrap().is_none());
            let j = q.get(job.id).await.unwrap();
            assert_eq!(j.status, JobStatus::Failed, "{}", env.label);
            assert!(j.last_error.unwrap().contains("lease expired"));
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn cancel_stops_a_queued_job_at_once_and_a_running_one_at_its_renewal() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            let running = q.enqueue(NewJob::new("test", json!({}))).await.unwrap();
            let lease = q.claim("w", LEASE).await.unwrap().unwrap();
            let queued = q.enqueue(NewJob::new("test", json!({}))).await.unwrap();
            let (out, j) = q.cancel(queued.id).await.unwrap();
            assert_eq!((out, j.status), (CancelOutcome::Cancelled, JobStatus::Cancelled));
            let (out, j) = q.cancel(running.id).await.unwrap();
            assert_eq!((out, j.status), (CancelOutcome::Requested, JobStatus::Running));
            assert_eq!(
                q.renew(&lease, LEASE, None).await.unwrap(),
                LeaseState::Held {
                    cancel_requested: true
                }
            );
            assert!(q.finish_cancelled(&lease).await.unwrap());
            let (out, _) = q.cancel(running.id).await.unwrap();
            assert_eq!(out, CancelOutcome::AlreadyFinished);
            assert!(q.claim("w", LEASE).await.unwrap().is_none(), "{}", env.label);
            assert!(matches!(
                q.cancel(Uuid::now_v7()).await,
                Err(StoreError::NotFound { .. })
            ));
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn a_released_job_is_queued_again_without_counting_the_attempt() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            let job = q.enqueue(NewJob::new("test", json!({}))).await.unwrap();
            let lease = q.claim("w", LEASE).await.unwrap().unwrap();
            assert!(q.release(&lease).await.unwrap());
            assert!(!q.release(&lease).await.unwrap());
            let j = q.get(job.id).await.unwrap();
            assert_eq!((j.status, j.attempts), (JobStatus::Queued, 0), "{}", env.label);
            // claimable at once by anyone, the old holder fenced off
            let again = q.claim("w2", LEASE).await.unwrap().unwrap();
            assert_eq!(again.job.attempts, 1);
            assert!(!q.complete(&lease, &json!(1)).await.unwrap());
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn priority_wins_then_age_and_lists_page_newest_first() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            let a = q.enqueue(NewJob::new("a", json!({}))).await.unwrap();
            let b = q.enqueue(NewJob::new("b", json!({}))).await.unwrap();
            let c = q
                .enqueue(NewJob {
                    priority: 5,
                    ..NewJob::new("c", json!({}))
                })
                .await
                .unwrap();
            let order: Vec<Uuid> = [
                q.claim("w", LEASE).await.unwrap().unwrap().job.id,
                q.claim("w", LEASE).await.unwrap().unwrap().job.id,
            ]
            .into();
            assert_eq!(order, vec![c.id, a.id], "{}", env.label);
            let page = q
                .list(&JobFilter {
                    limit: 2,
                    ..JobFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(
                page.items.iter().map(|j| j.id).collect::<Vec<_>>(),
                vec![c.id, b.id]
            );
            let next = q
                .list(&JobFilter {
                    limit: 2,
                    cursor: page.next_cursor,
                    ..JobFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(next.items.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a.id]);
            let queued = q
                .list(&JobFilter {
                    limit: 10,
                    status: Some(JobStatus::Queued),
                    ..JobFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(queued.items.len(), 1);
            // By creation time: [from, to).
            clock.advance(Duration::from_secs(60));
            let later = q.enqueue(NewJob::new("d", json!({}))).await.unwrap();
            let since = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| {
                let q = q.clone();
                async move {
                    let f = JobFilter {
                        limit: 10,
                        created_from: from,
                        created_to: to,
                        ..JobFilter::default()
                    };
                    q.list(&f)
                        .await
                        .unwrap()
                        .items
                        .iter()
                        .map(|j| j.id)
                        .collect::<Vec<_>>()
                }
            };
            assert_eq!(since(Some(later.created_at), None).await, vec![later.id]);
            assert_eq!(since(None, Some(later.created_at)).await, vec![c.id, b.id, a.id]);
            assert!(
                since(Some(later.created_at + chrono::Duration::milliseconds(1)), None)
                    .await
                    .is_empty()
            );
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn concurrent_claims_never_take_one_job_twice() {
        for env in backends() {
            let clock = ManualClock::new(Utc::now());
            let q = queue(&env, clock.clone()).await;
            // a second handle on its own pool, as another instance would have
            let other = queue(&env, clock.clone()).await;
            for i in 0..40 {
                q.enqueue(NewJob::new("t", json!({ "i": i }))).await.unwrap();
            }
            let run = |q: JobQueue, name: &'static str| async move {
                let mut got = Vec::new();
                while let Some(l) = q.claim(name, LEASE).await.unwrap() {
                    got.push(l.job.id);
                }
                got
            };
            let (a, b, c) = tokio::join!(run(q.clone(), "a"), run(other.clone(), "b"), run(q.clone(), "c"));
            let mut all: Vec<Uuid> = a.into_iter().chain(b).chain(c).collect();
            assert_eq!(all.len(), 40, "{}", env.label);
            all.sort();
            all.dedup();
            assert_eq!(all.len(), 40, "a job was claimed twice on {}", env.label);
            env.cleanup().await;
        }
    }
}
