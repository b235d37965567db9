//! The `code2asin.resolve` job kind (code2asin queue): a list of EANs, or a catalog selection,
//! through the resolver of its account and marketplace.
//!
//! The run writes the job's EANs once as `pending` rows, then walks them in order, two chunks
//! in flight so that the resolver always has the next EANs queued while a chunk's results are
//! written: per chunk, each EAN's candidates are judged ([`pm_amazon::choose`]), matches at or
//! above the threshold are written to the products' ASIN, and the results recorded. What was
//! recorded stays: a run cut off (crash, pause, cancel) goes on from the first pending EAN, and
//! what it had asked is in the cache by then, so it costs no request again.
//!
//! Pause is a switch in the job's state, read after each chunk (and before the run starts): a
//! paused run stops and the job waits, queued but not due ([`JobError::Waiting`]), until it is
//! resumed.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use pm_domain::{Asin, Gtin};
use pm_storage::code2asin::{Code2asinStatistics, NewJobState, Resolved, ResultStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::resolver::{Answer, Resolve, ResolverConfig};
use super::Code2asinDeps;
use crate::changes::{By, Origin};
use crate::jobs::{JobError, JobHandler, JobRun};

pub const KIND: &str = "code2asin.resolve";

/// EANs per chunk of the run (10 requests' worth).
const CHUNK: u32 = 200;

/// What a job resolves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// EANs (GTIN-8/12/13/14); an invalid one gets an `error` result saying why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eans: Vec<String>,
    /// Or the catalog's products matching this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// The account (default: the settings' account, else the stored default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Uuid>,
    /// A marketplace code or id instead of the account's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketplace: Option<String>,
    /// Instead of `code2asin.auto_apply_threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_apply_threshold: Option<f64>,
}

/// A catalog selection: live products with an EAN, narrowed by every field given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    pub supplier_id: Option<Uuid>,
    #[serde(default)]
    pub without_asin: bool,
    pub category_id: Option<Uuid>,
}

/// A chunk of pending EANs (position, EAN) on its way through the resolver.
type ChunkFuture = BoxFuture<'static, Result<(Vec<(i64, String)>, Vec<Answer>), JobError>>;

/// The job kind.
pub struct ResolveEans(pub Arc<Code2asinDeps>);

impl JobHandler for ResolveEans {
    fn run(&self, run: JobRun) -> BoxFuture<'static, Result<Value, JobError>> {
        let deps = self.0.clone();
        Box::pin(async move { run_job(run, &deps).await })
    }
}

fn store_err(e: pm_storage::StoreError) -> JobError {
    JobError::Retryable(format!("code2asin database: {e}"))
}

fn paused(counters: &pm_storage::code2asin::JobCounters) -> JobError {
    JobError::Waiting {
        reason: "paused".into(),
        details: json!({"awaiting": "resume", "counters": counters}),
    }
}

async fn run_job(run: JobRun, d: &Code2asinDeps) -> Result<Value, JobError> {
    let job_id = run.job.id;
    let p: Payload = serde_json::from_value(run.job.payload.clone())
        .map_err(|e| JobError::Fatal(format!("bad payload: {e}")))?;
    let supplier_id = p.selection.as_ref().and_then(|s| s.supplier_id);
    // A supplier's own settings fill what the job does not say.
    let supplier = match supplier_id {
        Some(id) => d.store.supplier_config(id).await.map_err(store_err)?,
        None => None,
    };
    if let Some(c) = supplier.as_ref().filter(|c| !c.enabled) {
        return Err(JobError::Fatal(format!(
            "code2asin is turned off for supplier {}",
            c.supplier_id
        )));
    }
    let account_id = p.account_id.or(supplier.as_ref().and_then(|c| c.account_id));
    let marketplace = p
        .marketplace
        .clone()
        .or(supplier.as_ref().and_then(|c| c.marketplace.clone()));
    let account = d
        .accounts
        .resolve(account_id, marketplace.as_deref())
        .await
        .map_err(|e| match e.is_retryable() {
            true => JobError::Retryable(e.to_string()),
            false => JobError::Fatal(e.to_string()),
        })?;
    let threshold = p
        .auto_apply_threshold
        .or(supplier.as_ref().and_then(|c| c.auto_apply_threshold))
        .unwrap_or(d.auto_apply_threshold);
    let marketplace_id = account.marketplace.id().to_owned();
    if let Some(state) = d.store.job_state(job_id).await.map_err(store_err)? {
        if state.paused {
            return Err(paused(&state.counters));
        }
    }
    if !d.store.has_results(job_id).await.map_err(store_err)? {
        let eans = match &p.selection {
            Some(sel) => {
                let msg = crate::store::catalog::EansOf {
                    selection: pm_storage::catalog::AsinSelection {
                        supplier_id: sel.supplier_id,
                        without_asin: sel.without_asin,
                        category_id: sel.category_id,
                    },
                    limit: d.max_eans as u32,
                };
                d.catalog
                    .send(msg)
                    .await
                    .map_err(|e| JobError::Retryable(format!("catalog: {e}")))?
            }
            None => p.eans.iter().map(|e| canonical(e)).collect(),
        };
        let state = NewJobState {
            job_id,
            supplier_id,
            account_key: account.key.clone(),
            marketplace_id: marketplace_id.clone(),
            auto_apply_threshold: threshold,
        };
        let total = d.store.start_job(&state, &eans).await.map_err(store_err)?;
        let line = format!(
            "started: {total} eans, account {}, marketplace {marketplace_id}",
            account.key
        );
        let _ = d.store.log(job_id, "info", &line).await;
        let stats = Code2asinStatistics {
            supplier: supplier_key(supplier_id),
            day: today(),
            jobs: 1,
            eans: total,
            ..Default::default()
        };
        let _ = d.store.add_statistics(&stats).await;
    }

    let key = format!("{}.{marketplace_id}", account.key);
    d.resolver_deps
        .directory
        .lock()
        .entry(key.clone())
        .or_insert_with(|| {
            Arc::new(ResolverConfig {
                account: account.key.clone(),
                marketplace_id: marketplace_id.clone(),
                client: d.accounts.client(&account),
                rate_per_sec: account.rate_per_sec,
                burst: account.burst,
            })
        });
    let resolver = d
        .resolvers
        .get_or_start(&key)
        .map_err(|e| JobError::Retryable(format!("no resolver for {key}: {e}")))?;

    let mut after = -1i64;
    let mut exhausted = false;
    let mut in_flight: FuturesOrdered<ChunkFuture> = FuturesOrdered::new();
    let mut spent = (0.0f64, 0.0f64);
    let mut written = (0i64, 0i64);
    let mut unanswered = 0usize;
    loop {
        while in_flight.len() < 2 && !exhausted {
            let rows = d.store.pending(job_id, after, CHUNK).await.map_err(store_err)?;
            match rows.last() {
                None => exhausted = true,
                Some((seq, _)) => {
                    after = *seq;
                    let resolver = resolver.clone();
                    let eans: Vec<Gtin> = rows.iter().filter_map(|(_, e)| Gtin::parse(e).ok()).collect();
                    in_flight.push_back(Box::pin(async move {
                        let answers = resolver
                            .send(Resolve { eans })
                            .await
                            .map_err(|e| JobError::Retryable(format!("resolver: {e}")))?;
                        Ok((rows, answers))
                    }));
                }
            }
        }
        let next = tokio::select! {
            next = in_flight.next() => next,
            _ = run.cancelled() => return Err(JobError::Cancelled),
        };
        let Some(chunk) = next else { break };
        let (rows, answers) = chunk?;
        let mut by_ean: std::collections::HashMap<String, Answer> = answers
            .into_iter()
            .map(|a| (a.ean.as_str().to_owned(), a))
            .collect();
        let mut results = Vec::with_capacity(rows.len());
        let mut apply = Vec::new();
        let mut delta = Code2asinStatistics {
            supplier: supplier_key(supplier_id),
            day: today(),
            ..Default::default()
        };
        for (_, ean) in &rows {
            let Some(a) = by_ean.remove(ean) else {
                let reason = match Gtin::parse(ean) {
                    Err(e) => format!("not a valid gtin: {e}"),
                    Ok(_) => "no answer".into(),
                };
                delta.errors += 1;
                results.push(error_result(ean, reason));
                continue;
            };
            spent.0 += a.cost.requests;
            spent.1 += a.cost.throttles;
            match a.result {
                Err(no) if no.account => {
                    let line = format!("failed: {}", no.message);
                    let _ = d.store.log(job_id, "error", &line).await;
                    return Err(JobError::Fatal(format!(
                        "amazon account {}: {}",
                        account.key, no.message
                    )));
                }
                Err(no) if no.retryable => unanswered += 1,
                Err(no) => {
                    delta.errors += 1;
                    results.push(error_result(ean, no.message));
                }
                Ok(candidates) => {
                    let judged = judge(ean, candidates, threshold, a.from_cache);
                    if judged.from_cache {
                        delta.cache_hits += 1;
                    }
                    match judged.status {
                        ResultStatus::Matched => delta.matched += 1,
                        ResultStatus::Multiple => delta.multiple += 1,
                        _ => delta.not_found += 1,
                    }
                    if judged.applied {
                        if let (Some(asin), Ok(g)) = (judged.asin.as_deref(), Gtin::parse(ean)) {
                            if let Ok(asin) = Asin::parse(asin) {
                                apply.push((g, asin));
                            }
                        }
                    }
                    results.push(judged);
                }
            }
        }
        if !apply.is_empty() {
            d.catalog
                .send(crate::store::catalog::SetAsins(apply).by(Origin::system("code2asin")))
                .await
                .map_err(|e| JobError::Retryable(format!("catalog: {e}")))?;
        }
        let whole = (
            spent.0.round() as i64 - written.0,
            spent.1.round() as i64 - written.1,
        );
        written = (written.0 + whole.0, written.1 + whole.1);
        d.store
            .record(job_id, &results, whole.0, whole.1)
            .await
            .map_err(store_err)?;
        delta.requests = whole.0;
        delta.throttles = whole.1;
        let _ = d.store.add_statistics(&delta).await;
        let state = d.store.job_state(job_id).await.map_err(store_err)?;
        if let Some(state) = state {
            run.progress(
                json!({"counters": state.counters, "account": account.key, "marketplace": marketplace_id}),
            );
            if state.paused {
                let _ = d.store.log(job_id, "info", "paused").await;
                return Err(paused(&state.counters));
            }
        }
        if run.is_cancelled() {
            return Err(JobError::Cancelled);
        }
    }
    if unanswered > 0 {
        return Err(JobError::Retryable(format!(
            "{unanswered} eans got no answer yet (the resolver restarted); trying again"
        )));
    }
    let state = d
        .store
        .job_state(job_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| JobError::Fatal("job state vanished".into()))?;
    let c = &state.counters;
    let line = format!(
        "finished: {} matched, {} multiple, {} not found, {} errors, {} applied, {} requests, {} cache hits",
        c.matched, c.multiple, c.not_found, c.errors, c.applied, c.requests, c.cache_hits
    );
    let _ = d.store.log(job_id, "info", &line).await;
    Ok(json!({"counters": c, "account": account.key, "marketplace": marketplace_id}))
}

/// The canonical spelling of a valid GTIN, or the input as given (it then gets an `error`).
fn canonical(ean: &str) -> String {
    Gtin::parse(ean.trim()).map_or_else(|_| ean.trim().to_owned(), |g| g.as_str().to_owned())
}

fn supplier_key(supplier: Option<Uuid>) -> String {
    supplier.map_or_else(|| "none".to_owned(), |s| s.to_string())
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

fn error_result(ean: &str, reason: String) -> Resolved {
    Resolved {
        ean: ean.to_owned(),
        status: ResultStatus::Error,
        candidates: Vec::new(),
        asin: None,
        confidence: None,
        reason: Some(reason),
        applied: false,
        from_cache: false,
    }
}

/// What the candidates of an EAN say: its status, the preferred ASIN with a confidence and
/// why, and whether it is confident enough to apply.
fn judge(
    ean: &str,
    candidates: Vec<pm_storage::code2asin::CandidateAsin>,
    threshold: f64,
    from_cache: bool,
) -> Resolved {
    let parsed: Vec<pm_amazon::Candidate> = candidates
        .iter()
        .filter_map(|c| {
            Some(pm_amazon::Candidate {
                asin: Asin::parse(&c.asin).ok()?,
                title: c.title.clone(),
                brand: c.brand.clone(),
                sales_rank: c.sales_rank,
                image: c.image.clone(),
            })
        })
        .collect();
    let choice = pm_amazon::choose(&parsed);
    let status = match candidates.len() {
        0 => ResultStatus::NotFound,
        1 => ResultStatus::Matched,
        _ => ResultStatus::Multiple,
    };
    let asin = choice.preferred.as_ref().map(|a| a.as_str().to_owned());
    let applied = asin.is_some() && choice.confidence >= threshold;
    Resolved {
        ean: ean.to_owned(),
        status,
        candidates,
        asin,
        confidence: (status != ResultStatus::NotFound).then_some(choice.confidence),
        reason: Some(choice.reason),
        applied,
        from_cache,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm_storage::code2asin::CandidateAsin;

    fn cand(asin: &str, rank: Option<u32>) -> CandidateAsin {
        CandidateAsin {
            asin: asin.into(),
            title: Some("t".into()),
            brand: None,
            sales_rank: rank,
            image: None,
        }
    }

    #[test]
    fn a_single_match_is_applied_and_close_candidates_wait_for_a_person() {
        let one = judge("4006381333931", vec![cand("B000000001", Some(5))], 0.85, false);
        assert_eq!(
            (one.status, one.applied, one.confidence),
            (ResultStatus::Matched, true, Some(1.0))
        );
        let close = judge(
            "4006381333931",
            vec![cand("B000000001", Some(5)), cand("B000000002", Some(6))],
            0.85,
            false,
        );
        assert_eq!(close.status, ResultStatus::Multiple);
        assert!(!close.applied);
        assert_eq!(close.candidates.len(), 2);
        let none = judge("4006381333931", vec![], 0.85, true);
        assert_eq!(
            (none.status, none.applied, none.confidence),
            (ResultStatus::NotFound, false, None)
        );
        // A clearly best-ranked candidate is preferred but below the default threshold.
        let best = judge(
            "4006381333931",
            vec![cand("B000000001", Some(1)), cand("B000000002", Some(1000))],
            0.5,
            false,
        );
        assert_eq!(best.asin.as_deref(), Some("B000000001"));
        assert!(best.applied);
    }

    #[test]
    fn invalid_eans_are_kept_as_given() {
        assert_eq!(canonical(" 4006381333931 "), "4006381333931");
        assert_eq!(canonical("12345"), "12345");
    }
}
