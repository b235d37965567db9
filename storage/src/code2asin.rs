//! The code2asin database beyond its job queue: each job's EANs and what was found for them,
//! the persisted cache of Amazon's answers, per-supplier settings, daily statistics and logs.
//!
//! A job's EANs are written once, as `pending` rows in the job's order, when its run starts
//! ([`Code2asin::start_job`], idempotent); the run then takes pending rows in order and records
//! each answer, so that a run cut off by a crash goes on where it stopped.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use crate::catalog::Page;
use crate::db::{BeginLocked, Db};
use crate::{with_conn, StoreError};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The outcome for one EAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Pending,
    /// One ASIN.
    Matched,
    /// Several candidate ASINs.
    Multiple,
    NotFound,
    /// Amazon refused the request or kept failing (see `reason`).
    Error,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Pending => "pending",
            ResultStatus::Matched => "matched",
            ResultStatus::Multiple => "multiple",
            ResultStatus::NotFound => "not_found",
            ResultStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ResultStatus::Pending,
            "matched" => ResultStatus::Matched,
            "multiple" => ResultStatus::Multiple,
            "not_found" => ResultStatus::NotFound,
            "error" => ResultStatus::Error,
            _ => return None,
        })
    }
}

/// One candidate ASIN for an EAN, as Amazon described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CandidateAsin {
    pub asin: String,
    pub title: Option<String>,
    pub brand: Option<String>,
    /// The best (lowest) sales rank Amazon gave, if any.
    pub sales_rank: Option<u32>,
    pub image: Option<String>,
}

/// One EAN of a job, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EanResult {
    pub ean: String,
    /// Position in the job (0-based).
    pub seq: i64,
    pub status: ResultStatus,
    /// The ASINs: one for `matched`, every candidate for `multiple`.
    pub asins: Vec<CandidateAsin>,
    /// The preferred ASIN (the match, the clear best of several) or the one a person chose.
    pub asin: Option<String>,
    /// 1.0 for a single match; lower when several candidates compete.
    pub confidence: Option<f64>,
    /// Why this ASIN is preferred, why none is, or what went wrong.
    pub reason: Option<String>,
    /// Written to the catalog's product.
    pub applied: bool,
    pub chosen_by: Option<Uuid>,
    /// Answered from the cache, without a request.
    pub from_cache: bool,
}

/// What a run found for one EAN, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub ean: String,
    pub status: ResultStatus,
    pub candidates: Vec<CandidateAsin>,
    pub asin: Option<String>,
    pub confidence: Option<f64>,
    pub reason: Option<String>,
    pub applied: bool,
    pub from_cache: bool,
}

/// A job's settings and counters.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JobState {
    pub job_id: Uuid,
    pub supplier_id: Option<Uuid>,
    pub account_key: String,
    pub marketplace_id: String,
    pub auto_apply_threshold: f64,
    pub paused: bool,
    pub counters: JobCounters,
}

/// How far a job is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JobCounters {
    pub total: i64,
    pub pending: i64,
    pub matched: i64,
    pub multiple: i64,
    pub not_found: i64,
    pub errors: i64,
    /// Matches written to the catalog.
    pub applied: i64,
    /// Requests to Amazon made for this job.
    pub requests: i64,
    /// 429 answers met by this job's requests.
    pub throttles: i64,
    /// EANs answered from the cache.
    pub cache_hits: i64,
}

/// A new job's state.
#[derive(Debug, Clone)]
pub struct NewJobState {
    pub job_id: Uuid,
    pub supplier_id: Option<Uuid>,
    pub account_key: String,
    pub marketplace_id: String,
    pub auto_apply_threshold: f64,
}

/// Per supplier and day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Code2asinStatistics {
    /// A supplier id, or `none` for jobs on a plain list of EANs.
    pub supplier: String,
    pub day: String,
    pub jobs: i64,
    pub eans: i64,
    pub requests: i64,
    pub matched: i64,
    pub multiple: i64,
    pub not_found: i64,
    pub errors: i64,
    pub throttles: i64,
    pub cache_hits: i64,
    /// (matched + multiple) / EANs resolved, 0 when none.
    pub match_rate: f64,
}

/// A supplier's code2asin settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SupplierConfig {
    pub supplier_id: Uuid,
    pub account_id: Option<Uuid>,
    /// A marketplace code (`FR`) or id; unset: the account's.
    pub marketplace: Option<String>,
    /// Unset: `code2asin.auto_apply_threshold`.
    pub auto_apply_threshold: Option<f64>,
    pub enabled: bool,
}

/// One log line of a job.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Code2asinLog {
    pub at: i64,
    pub level: String,
    pub message: String,
}

/// Reads an [`EanResult`] from a row of either backend.
macro_rules! result_row {
    ($r:expr) => {{
        let r = $r;
        let status: String = r.try_get("status")?;
        let candidates: Option<String> = r.try_get("candidates")?;
        Ok::<_, StoreError>(EanResult {
            ean: r.try_get("ean")?,
            seq: r.try_get("seq")?,
            status: ResultStatus::parse(&status).unwrap_or(ResultStatus::Error),
            asins: candidates
                .map(|c| serde_json::from_str(&c).unwrap_or_default())
                .unwrap_or_default(),
            asin: r.try_get("asin")?,
            confidence: r.try_get("confidence")?,
            reason: r.try_get("reason")?,
            applied: r.try_get("applied")?,
            chosen_by: r.try_get("chosen_by")?,
            from_cache: r.try_get("from_cache")?,
        })
    }};
}

/// Queries of the code2asin database.
#[derive(Clone)]
pub struct Code2asin {
    db: Db,
}

/// Rows per multi-row insert (5 parameters each: well under SQLite's limit).
const INSERT_CHUNK: usize = 500;

impl Code2asin {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Writes a job's state and its EANs as `pending`, in order; the EANs only once (a run
    /// that starts again finds them). Returns the number of EANs of the job.
    pub async fn start_job(&self, state: &NewJobState, eans: &[String]) -> Result<i64, StoreError> {
        let now = now_ms();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            // The state may exist already: made paused before the run started, or by a run
            // that was cut off. Its pause switch and counters stay.
            sqlx::query(
                "INSERT INTO code2asin_job_state (job_id, supplier_id, account_key, marketplace_id, \
                 auto_apply_threshold, total, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (job_id) DO UPDATE SET supplier_id = excluded.supplier_id, \
                 account_key = excluded.account_key, marketplace_id = excluded.marketplace_id, \
                 auto_apply_threshold = excluded.auto_apply_threshold, updated_at = excluded.updated_at",
            )
            .bind(state.job_id)
            .bind(state.supplier_id)
            .bind(&state.account_key)
            .bind(&state.marketplace_id)
            .bind(state.auto_apply_threshold)
            .bind(eans.len() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let started: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM code2asin_results WHERE job_id = $1")
                .bind(state.job_id)
                .fetch_one(&mut *tx)
                .await?;
            if started == 0 {
                for (c, chunk) in eans.chunks(INSERT_CHUNK).enumerate() {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO code2asin_results (job_id, ean, seq, status, updated_at) ",
                    );
                    q.push_values(chunk.iter().enumerate(), |mut b, (i, ean)| {
                        b.push_bind(state.job_id)
                            .push_bind(ean.as_str())
                            .push_bind((c * INSERT_CHUNK + i) as i64)
                            .push_bind("pending")
                            .push_bind(now);
                    });
                    // A repeated EAN is asked once.
                    q.push(" ON CONFLICT (job_id, ean) DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        });
        let total = with_conn!(self.db, |conn| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM code2asin_results WHERE job_id = $1")
                .bind(state.job_id)
                .fetch_one(&mut *conn)
                .await?
        });
        Ok(total)
    }

    /// The next `limit` pending EANs of a job after position `after_seq` (-1: from the
    /// start), in order, with their positions.
    pub async fn pending(
        &self,
        job_id: Uuid,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT seq, ean FROM code2asin_results WHERE job_id = $1 AND status = 'pending' AND seq > $2 \
                 ORDER BY seq LIMIT $3",
            )
            .bind(job_id)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?
        }))
    }

    /// Records answers and adds to the job's request counters, in one transaction.
    pub async fn record(
        &self,
        job_id: Uuid,
        results: &[Resolved],
        requests: i64,
        throttles: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let cache_hits = results.iter().filter(|r| r.from_cache).count() as i64;
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            for r in results {
                sqlx::query(
                    "UPDATE code2asin_results SET status = $3, candidates = $4, asin = $5, confidence = $6, \
                     reason = $7, applied = $8, from_cache = $9, updated_at = $10 WHERE job_id = $1 AND ean = $2",
                )
                .bind(job_id)
                .bind(&r.ean)
                .bind(r.status.as_str())
                .bind(serde_json::to_string(&r.candidates).unwrap_or_else(|_| "[]".into()))
                .bind(r.asin.as_deref())
                .bind(r.confidence)
                .bind(r.reason.as_deref())
                .bind(r.applied)
                .bind(r.from_cache)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE code2asin_job_state SET requests = requests + $2, throttles = throttles + $3, \
                 cache_hits = cache_hits + $4, updated_at = $5 WHERE job_id = $1",
            )
            .bind(job_id)
            .bind(requests)
            .bind(throttles)
            .bind(cache_hits)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Sets a job's pause switch; `false` when the job has no state (not started).
    pub async fn set_paused(&self, job_id: Uuid, paused: bool) -> Result<bool, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query("UPDATE code2asin_job_state SET paused = $2, updated_at = $3 WHERE job_id = $1")
                .bind(job_id)
                .bind(paused)
                .bind(now_ms())
                .execute(&mut *conn)
                .await?
                .rows_affected()
                > 0
        }))
    }

    /// Writes a job's state before its run starts (so that a job can be paused while queued).
    pub async fn ensure_state(&self, state: &NewJobState) -> Result<(), StoreError> {
        let now = now_ms();
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO code2asin_job_state (job_id, supplier_id, account_key, marketplace_id, \
                 auto_apply_threshold, total, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6) \
                 ON CONFLICT (job_id) DO NOTHING",
            )
            .bind(state.job_id)
            .bind(state.supplier_id)
            .bind(&state.account_key)
            .bind(&state.marketplace_id)
            .bind(state.auto_apply_threshold)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Whether EANs of the job were written (a job whose state was made by [`Self::ensure_state`]
    /// has none until its run starts).
    pub async fn has_results(&self, job_id: Uuid) -> Result<bool, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM code2asin_results WHERE job_id = $1 AND seq = 0",
            )
            .bind(job_id)
            .fetch_one(&mut *conn)
            .await?
                > 0
        }))
    }

    /// A job's settings and counters.
    pub async fn job_state(&self, job_id: Uuid) -> Result<Option<JobState>, StoreError> {
        with_conn!(self.db, |conn| {
            let Some(r) = sqlx::query(
                "SELECT job_id, supplier_id, account_key, marketplace_id, auto_apply_threshold, paused, \
                 requests, throttles, cache_hits FROM code2asin_job_state WHERE job_id = $1",
            )
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await?
            else {
                return Ok(None);
            };
            let mut counters = JobCounters {
                requests: r.try_get("requests")?,
                throttles: r.try_get("throttles")?,
                cache_hits: r.try_get("cache_hits")?,
                ..Default::default()
            };
            let rows = sqlx::query(
                "SELECT status, COUNT(*) AS n, SUM(CASE WHEN applied THEN 1 ELSE 0 END) AS applied \
                 FROM code2asin_results WHERE job_id = $1 GROUP BY status",
            )
            .bind(job_id)
            .fetch_all(&mut *conn)
            .await?;
            for s in &rows {
                let n: i64 = s.try_get("n")?;
                let applied: Option<i64> = s.try_get("applied")?;
                counters.total += n;
                counters.applied += applied.unwrap_or(0);
                match ResultStatus::parse(s.try_get::<&str, _>("status")?) {
                    Some(ResultStatus::Pending) => counters.pending = n,
                    Some(ResultStatus::Matched) => counters.matched = n,
                    Some(ResultStatus::Multiple) => counters.multiple = n,
                    Some(ResultStatus::NotFound) => counters.not_found = n,
                    Some(ResultStatus::Error) => counters.errors = n,
                    None => {}
                }
            }
            Ok(Some(JobState {
                job_id: r.try_get("job_id")?,
                supplier_id: r.try_get("supplier_id")?,
                account_key: r.try_get("account_key")?,
                marketplace_id: r.try_get("marketplace_id")?,
                auto_apply_threshold: r.try_get("auto_apply_threshold")?,
                paused: r.try_get("paused")?,
                counters,
            }))
        })
    }

    /// A job's results in order, `limit` at a time after `cursor` (the last `seq`), optionally
    /// only those of one status.
    pub async fn results(
        &self,
        job_id: Uuid,
        status: Option<ResultStatus>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<EanResult>, StoreError> {
        let after: i64 = match cursor {
            Some(c) => c.parse().map_err(|_| StoreError::BadCursor)?,
            None => -1,
        };
        let sql = format!(
            "SELECT ean, seq, status, candidates, asin, confidence, reason, applied, chosen_by, from_cache \
             FROM code2asin_results WHERE job_id = $1 AND seq > $2 {} ORDER BY seq LIMIT $3",
            if status.is_some() { "AND status = $4" } else { "" }
        );
        let mut items = with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql)
                .bind(job_id)
                .bind(after)
                .bind(i64::from(limit) + 1)
                .bind(status.map(ResultStatus::as_str))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(|r| result_row!(r))
                .collect::<Result<Vec<_>, StoreError>>()?
        });
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.seq.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// One EAN of a job.
    pub async fn result(&self, job_id: Uuid, ean: &str) -> Result<Option<EanResult>, StoreError> {
        with_conn!(self.db, |conn| {
            let row = sqlx::query(
                "SELECT ean, seq, status, candidates, asin, confidence, reason, applied, chosen_by, from_cache \
                 FROM code2asin_results WHERE job_id = $1 AND ean = $2",
            )
            .bind(job_id)
            .bind(ean)
            .fetch_optional(&mut *conn)
            .await?;
            row.as_ref().map(|r| result_row!(r)).transpose()
        })
    }

    /// Records the ASIN a person chose for an EAN (applied to the catalog by the caller).
    pub async fn choose(
        &self,
        job_id: Uuid,
        ean: &str,
        asin: &str,
        by: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query(
                "UPDATE code2asin_results SET asin = $3, applied = TRUE, chosen_by = $4, confidence = 1.0, \
                 reason = 'chosen by a person', updated_at = $5 WHERE job_id = $1 AND ean = $2",
            )
            .bind(job_id)
            .bind(ean)
            .bind(asin)
            .bind(by)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?
            .rows_affected()
                > 0
        }))
    }

    /// Amazon's answers for codes (GTIN-14) of a marketplace resolved at or after `since_ms`.
    pub async fn history(
        &self,
        marketplace_id: &str,
        gtin14s: &[String],
        since_ms: i64,
    ) -> Result<HashMap<String, Vec<CandidateAsin>>, StoreError> {
        let mut out = HashMap::new();
        for chunk in gtin14s.chunks(INSERT_CHUNK) {
            with_conn!(self.db, |conn| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT gtin14, candidates FROM code2asin_history WHERE marketplace_id = ",
                );
                q.push_bind(marketplace_id);
                q.push(" AND resolved_at >= ");
                q.push_bind(since_ms);
                q.push(" AND gtin14 IN (");
                let mut sep = q.separated(", ");
                for g in chunk {
                    sep.push_bind(g.as_str());
                }
                q.push(")");
                for r in q.build().fetch_all(&mut *conn).await? {
                    let g: String = r.try_get("gtin14")?;
                    let c: String = r.try_get("candidates")?;
                    out.insert(g, serde_json::from_str(&c).unwrap_or_default());
                }
            });
        }
        Ok(out)
    }

    /// Keeps Amazon's answers (GTIN-14 → candidates, empty when not found).
    pub async fn put_history(
        &self,
        marketplace_id: &str,
        answers: &[(String, Vec<CandidateAsin>)],
    ) -> Result<(), StoreError> {
        if answers.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        with_conn!(self.db, |conn| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO code2asin_history (marketplace_id, gtin14, candidates, resolved_at) ",
            );
            q.push_values(answers, |mut b, (g, c)| {
                b.push_bind(marketplace_id)
                    .push_bind(g.as_str())
                    .push_bind(serde_json::to_string(c).unwrap_or_else(|_| "[]".into()))
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (marketplace_id, gtin14) DO UPDATE SET candidates = excluded.candidates, \
                 resolved_at = excluded.resolved_at",
            );
            q.build().execute(&mut *conn).await?;
        });
        Ok(())
    }

    /// Adds to a supplier's counters of `day`.
    pub async fn add_statistics(&self, s: &Code2asinStatistics) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO code2asin_statistics (supplier_key, day, jobs, eans, requests, matched, multiple, \
                 not_found, errors, throttles, cache_hits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (supplier_key, day) DO UPDATE SET jobs = code2asin_statistics.jobs + excluded.jobs, \
                 eans = code2asin_statistics.eans + excluded.eans, \
                 requests = code2asin_statistics.requests + excluded.requests, \
                 matched = code2asin_statistics.matched + excluded.matched, \
                 multiple = code2asin_statistics.multiple + excluded.multiple, \
                 not_found = code2asin_statistics.not_found + excluded.not_found, \
                 errors = code2asin_statistics.errors + excluded.errors, \
                 throttles = code2asin_statistics.throttles + excluded.throttles, \
                 cache_hits = code2asin_statistics.cache_hits + excluded.cache_hits",
            )
            .bind(&s.supplier)
            .bind(&s.day)
            .bind(s.jobs)
            .bind(s.eans)
            .bind(s.requests)
            .bind(s.matched)
            .bind(s.multiple)
            .bind(s.not_found)
            .bind(s.errors)
            .bind(s.throttles)
            .bind(s.cache_hits)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// A supplier's (or `none`'s) statistics, newest day first.
    pub async fn statistics(
        &self,
        supplier: &str,
        days: u32,
    ) -> Result<Vec<Code2asinStatistics>, StoreError> {
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT supplier_key, day, jobs, eans, requests, matched, multiple, not_found, errors, throttles, \
                 cache_hits FROM code2asin_statistics WHERE supplier_key = $1 ORDER BY day DESC LIMIT $2",
            )
            .bind(supplier)
            .bind(i64::from(days.min(3660)))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    let mut s = Code2asinStatistics {
                        supplier: r.try_get("supplier_key")?,
                        day: r.try_get("day")?,
                        jobs: r.try_get("jobs")?,
                        eans: r.try_get("eans")?,
                        requests: r.try_get("requests")?,
                        matched: r.try_get("matched")?,
                        multiple: r.try_get("multiple")?,
                        not_found: r.try_get("not_found")?,
                        errors: r.try_get("errors")?,
                        throttles: r.try_get("throttles")?,
                        cache_hits: r.try_get("cache_hits")?,
                        match_rate: 0.0,
                    };
                    let resolved = s.matched + s.multiple + s.not_found;
                    if resolved > 0 {
                        s.match_rate = (s.matched + s.multiple) as f64 / resolved as f64;
                    }
                    Ok(s)
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// A supplier's settings.
    pub async fn supplier_config(&self, supplier_id: Uuid) -> Result<Option<SupplierConfig>, StoreError> {
        with_conn!(self.db, |conn| {
            let row = sqlx::query(
                "SELECT supplier_id, account_id, marketplace, auto_apply_threshold, enabled FROM code2asin_suppliers \
                 WHERE supplier_id = $1",
            )
            .bind(supplier_id)
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|r| {
                Ok(SupplierConfig {
                    supplier_id: r.try_get("supplier_id")?,
                    account_id: r.try_get("account_id")?,
                    marketplace: r.try_get("marketplace")?,
                    auto_apply_threshold: r.try_get("auto_apply_threshold")?,
                    enabled: r.try_get("enabled")?,
                })
            })
            .transpose()
        })
    }

    /// Sets a supplier's settings.
    pub async fn put_supplier_config(&self, c: &SupplierConfig) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO code2asin_suppliers (supplier_id, account_id, marketplace, auto_apply_threshold, enabled, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (supplier_id) DO UPDATE SET \
                 account_id = excluded.account_id, marketplace = excluded.marketplace, \
                 auto_apply_threshold = excluded.auto_apply_threshold, enabled = excluded.enabled, \
                 updated_at = excluded.updated_at",
            )
            .bind(c.supplier_id)
            .bind(c.account_id)
            .bind(c.marketplace.as_deref())
            .bind(c.auto_apply_threshold)
            .bind(c.enabled)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Appends a line to a job's log.
    pub async fn log(&self, job_id: Uuid, level: &str, message: &str) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO code2asin_logs (id, job_id, at, level, message) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(job_id)
            .bind(now_ms())
            .bind(level)
            .bind(message)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// A job's log, oldest first.
    pub async fn logs(&self, job_id: Uuid, limit: u32) -> Result<Vec<Code2asinLog>, StoreError> {
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT at, level, message FROM code2asin_logs WHERE job_id = $1 ORDER BY at, id LIMIT $2",
            )
            .bind(job_id)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Code2asinLog {
                        at: r.try_get("at")?,
                        level: r.try_get("level")?,
                        message: r.try_get("message")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::backends;
    use crate::Databases;
    use pm_config::Database;

    fn state(job_id: Uuid) -> NewJobState {
        NewJobState {
            job_id,
            supplier_id: None,
            account_key: "default".into(),
            marketplace_id: "A13V1IB3VIYZZH".into(),
            auto_apply_threshold: 0.85,
        }
    }

    #[tokio::test]
    async fn a_job_starts_once_resumes_where_it_stopped_and_counts_by_status() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            let c = Code2asin::new(dbs.get(Database::Code2asin).clone());
            let job = Uuid::now_v7();
            let eans: Vec<String> = (0..1203)
                .map(|i| format!("{:013}", 4000000000000u64 + i))
                .collect();
            assert_eq!(c.start_job(&state(job), &eans).await.unwrap(), 1203);
            // A second start (a run after a crash) writes nothing again.
            assert_eq!(c.start_job(&state(job), &eans[..10]).await.unwrap(), 1203);
            let first: Vec<String> = c
                .pending(job, -1, 3)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.1)
                .collect();
            assert_eq!(first, eans[..3].to_vec());
            let cand = CandidateAsin {
                asin: "B000000001".into(),
                title: Some("t".into()),
                brand: None,
                sales_rank: Some(3),
                image: None,
            };
            c.record(
                job,
                &[
                    Resolved {
                        ean: eans[0].clone(),
                        status: ResultStatus::Matched,
                        candidates: vec![cand.clone()],
                        asin: Some(cand.asin.clone()),
                        confidence: Some(1.0),
                        reason: None,
                        applied: true,
                        from_cache: false,
                    },
                    Resolved {
                        ean: eans[1].clone(),
                        status: ResultStatus::NotFound,
                        candidates: vec![],
                        asin: None,
                        confidence: None,
                        reason: None,
                        applied: false,
                        from_cache: true,
                    },
                ],
                1,
                2,
            )
            .await
            .unwrap();
            let next: Vec<String> = c
                .pending(job, -1, 2)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.1)
                .collect();
            assert_eq!(next, eans[2..4].to_vec());
            assert_eq!(c.pending(job, 3, 1).await.unwrap(), vec![(4, eans[4].clone())]);
            let s = c.job_state(job).await.unwrap().unwrap();
            assert_eq!(
                (
                    s.counters.total,
                    s.counters.pending,
                    s.counters.matched,
                    s.counters.not_found
                ),
                (1203, 1201, 1, 1)
            );
            assert_eq!(
                (
                    s.counters.requests,
                    s.counters.throttles,
                    s.counters.cache_hits,
                    s.counters.applied
                ),
                (1, 2, 1, 1)
            );
            let page = c
                .results(job, Some(ResultStatus::Matched), 10, None)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 1);
            assert_eq!(page.items[0].asins, vec![cand]);
            let page = c.results(job, None, 1000, None).await.unwrap();
            let rest = c
                .results(job, None, 1000, page.next_cursor.as_deref())
                .await
                .unwrap();
            assert_eq!(page.items.len() + rest.items.len(), 1203);
            assert!(rest.next_cursor.is_none());
            assert!(c.set_paused(job, true).await.unwrap());
            assert!(c.job_state(job).await.unwrap().unwrap().paused);
            assert!(!c.set_paused(Uuid::now_v7(), true).await.unwrap());
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn history_answers_only_what_is_recent_enough() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            let c = Code2asin::new(dbs.get(Database::Code2asin).clone());
            let g = "04006381333931".to_string();
            c.put_history("M", &[(g.clone(), vec![])]).await.unwrap();
            let found = c
                .history("M", &[g.clone(), "00000000000000".into()], 0)
                .await
                .unwrap();
            assert_eq!(found.len(), 1);
            assert!(found[&g].is_empty());
            assert!(c
                .history("M", std::slice::from_ref(&g), now_ms() + 60_000)
                .await
                .unwrap()
                .is_empty());
            assert!(c.history("other", &[g], 0).await.unwrap().is_empty());
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
