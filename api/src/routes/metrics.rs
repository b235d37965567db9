//! `GET /metrics` in the Prometheus text format.
//!
//! HTTP histograms come from the `metrics` recorder. Actor and pool figures are read from this
//! application's registry and pools at scrape time, so they are exact and never stale, and
//! readable while the actors themselves are saturated.

use std::fmt::Write;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use pm_supervisors::stats::HANDLING_BUCKETS;
use pm_supervisors::ActorStatus;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// The process-wide recorder (the `metrics` facade has one global recorder), installed once.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            // Jobs wait and run from a fraction of a second to hours.
            let job_buckets = [
                0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), &buckets)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Prefix("pm_job_".into()), &job_buckets))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (a test harness): render an empty one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe();
            handle
        })
        .clone()
}

/// HELP text of every metric recorded through the `metrics` facade (the ones written at scrape
/// time carry theirs in [`gauge`]); `promtool check metrics` wants one for each.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP requests by method, route template and status, from arrival to response."
    );
    describe_counter!(
        "pm_cache_requests_total",
        "Cache lookups by kind and result (l1_hit, l2_hit, miss)."
    );
    describe_counter!(
        "pm_cache_redis_errors_total",
        "Redis errors of the cache by kind (link: the connection)."
    );
    describe_counter!("pm_activity_written_total", "Activity-log entries written.");
    describe_counter!(
        "pm_code2asin_requests_total",
        "searchCatalogItems requests sent to Amazon, per account and marketplace."
    );
    describe_counter!(
        "pm_code2asin_throttles_total",
        "searchCatalogItems requests Amazon answered 429, per account and marketplace."
    );
    describe_counter!(
        "pm_code2asin_cache_hits_total",
        "EANs Code2ASIN answered from the cache or the persisted answers, without a request."
    );
    describe_counter!(
        "pm_activity_dropped_total",
        "Activity-log entries dropped: the queue was full, or a batch failed three times."
    );
    describe_counter!(
        "pm_changes_total",
        "Committed changes published on the change bus, by entity."
    );
    describe_counter!(
        "pm_events_dropped_total",
        "Live events dropped because a subscriber's buffer was full (it is told it lagged)."
    );
    describe_counter!("pm_jobs_finished_total", "Job runs ended, by queue and outcome.");
    describe_counter!(
        "pm_job_leases_lost_total",
        "Job runs stopped because their lease was taken over."
    );
    describe_histogram!(
        "pm_job_wait_seconds",
        Unit::Seconds,
        "Time from a job being due to its claim, by queue."
    );
    describe_histogram!(
        "pm_job_run_seconds",
        Unit::Seconds,
        "Job run times, by queue and outcome."
    );
    describe_gauge!("pm_ws_connections", "Open WebSocket connections.");
    describe_counter!(
        "pm_ws_messages_total",
        "WebSocket messages, by direction (in, out)."
    );
    describe_counter!(
        "pm_ws_lagged_events_total",
        "Events WebSocket clients missed for reading too slowly."
    );
}

fn gauge(out: &mut String, name: &str, help: &str, kind: &str, rows: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    summary = "Prometheus metrics",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "The Prometheus text format.", content_type = "text/plain; version=0.0.4", body = String),
        crate::openapi::Unauthorized,
    ))]
async fn metrics(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, crate::ApiError> {
    if let Some(token) = &s.metrics_token {
        let given = crate::auth::principal::bearer(&headers).unwrap_or_default();
        if !crate::auth::tokens::constant_time_eq(given, token.expose()) {
            return Err(crate::ApiError::Unauthorized(
                "metrics need the metrics token".into(),
            ));
        }
    }
    let mut out = s.prometheus.render();
    let actors = s.actors.registry.snapshots();
    let per = |f: &dyn Fn(&pm_supervisors::ActorSnapshot) -> f64| -> Vec<(String, f64)> {
        actors
            .iter()
            .map(|a| (format!("actor=\"{}\",kind=\"{}\"", a.name, a.kind), f(a)))
            .collect()
    };
    gauge(
        &mut out,
        "pm_actor_mailbox_depth",
        "Messages waiting in the mailbox.",
        "gauge",
        &per(&|a| a.depth as f64),
    );
    gauge(
        &mut out,
        "pm_actor_mailbox_capacity",
        "Mailbox capacity.",
        "gauge",
        &per(&|a| a.capacity as f64),
    );
    gauge(
        &mut out,
        "pm_actor_in_flight",
        "Messages being handled.",
        "gauge",
        &per(&|a| a.in_flight as f64),
    );
    gauge(
        &mut out,
        "pm_actor_processed_total",
        "Messages handled.",
        "counter",
        &per(&|a| a.processed as f64),
    );
    gauge(
        &mut out,
        "pm_actor_failed_total",
        "Messages that failed in the actor: an error of its own (the database, a bug) or a panic.",
        "counter",
        &per(&|a| a.failed as f64),
    );
    gauge(
        &mut out,
        "pm_actor_refused_total",
        "Messages answered with the caller's error (not found, invalid input, conflict): not the actor's failure.",
        "counter",
        &per(&|a| a.refused as f64),
    );
    gauge(
        &mut out,
        "pm_actor_panics_total",
        "Handler panics.",
        "counter",
        &per(&|a| a.panics as f64),
    );
    gauge(
        &mut out,
        "pm_actor_restarts_total",
        "Restarts.",
        "counter",
        &per(&|a| a.restarts as f64),
    );
    gauge(
        &mut out,
        "pm_actor_rejected_total",
        "Sends refused because the mailbox was full.",
        "counter",
        &per(&|a| a.rejected as f64),
    );
    gauge(
        &mut out,
        "pm_actor_up",
        "1 if the actor is running and not stuck.",
        "gauge",
        &per(&|a| f64::from(u8::from(a.status == ActorStatus::Running))),
    );
    let _ = writeln!(out, "# HELP pm_actor_handling_seconds Time to handle one message.\n# TYPE pm_actor_handling_seconds histogram");
    for a in &actors {
        let l = format!("actor=\"{}\",kind=\"{}\"", a.name, a.kind);
        for (bound, count) in HANDLING_BUCKETS.iter().zip(&a.handling.cumulative_buckets) {
            let _ = writeln!(
                out,
                "pm_actor_handling_seconds_bucket{{{l},le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "pm_actor_handling_seconds_bucket{{{l},le=\"+Inf\"}} {}",
            a.handling.count
        );
        let _ = writeln!(
            out,
            "pm_actor_handling_seconds_sum{{{l}}} {}",
            a.handling.sum_seconds
        );
        let _ = writeln!(out, "pm_actor_handling_seconds_count{{{l}}} {}", a.handling.count);
    }
    let pools = s.actors.pool_stats();
    let pool = |f: &dyn Fn(&pm_storage::PoolStats) -> f64| -> Vec<(String, f64)> {
        pools
            .iter()
            .map(|(db, p)| (format!("database=\"{db}\""), f(p)))
            .collect()
    };
    gauge(
        &mut out,
        "pm_db_pool_size",
        "Open connections.",
        "gauge",
        &pool(&|p| f64::from(p.open)),
    );
    gauge(
        &mut out,
        "pm_db_pool_idle",
        "Idle connections.",
        "gauge",
        &pool(&|p| f64::from(p.idle)),
    );
    gauge(
        &mut out,
        "pm_db_pool_waiting",
        "Callers waiting for a connection.",
        "gauge",
        &pool(&|p| p.waiting as f64),
    );
    gauge(
        &mut out,
        "pm_db_pool_max",
        "Connection ceiling (size plus overflow).",
        "gauge",
        &pool(&|p| f64::from(p.max)),
    );
    gauge(
        &mut out,
        "pm_db_pool_configured",
        "Configured steady pool size.",
        "gauge",
        &pool(&|p| f64::from(p.configured)),
    );
    job_queues(&s, &mut out).await;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// Depth of the five job queues (the seeds' "longueurs queues Celery"), asked of their gates at
/// once, each within a second; a queue that does not answer is left out of this scrape.
async fn job_queues(s: &AppState, out: &mut String) {
    use pm_storage::jobs::Queue;
    let asks = Queue::ALL.map(|q| {
        let gate = s.actors.jobs.gate(q).clone();
        async move {
            let d = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                gate.send(pm_actors::jobs::QueueDepthOf),
            )
            .await;
            (q, d)
        }
    });
    let depths: Vec<_> = futures::future::join_all(asks)
        .await
        .into_iter()
        .filter_map(|(q, d)| match d {
            Ok(Ok(d)) => Some((q, d)),
            _ => None,
        })
        .collect();
    let rows = |f: &dyn Fn(&pm_storage::jobs::QueueDepth) -> f64| -> Vec<(String, f64)> {
        depths
            .iter()
            .map(|(q, d)| (format!("queue=\"{q}\""), f(d)))
            .collect()
    };
    gauge(
        out,
        "pm_job_queue_ready",
        "Jobs queued and due, waiting for a worker.",
        "gauge",
        &rows(&|d| d.ready as f64),
    );
    gauge(
        out,
        "pm_job_queue_scheduled",
        "Jobs queued for later (retry backoff, delay).",
        "gauge",
        &rows(&|d| d.scheduled as f64),
    );
    gauge(
        out,
        "pm_job_queue_running",
        "Jobs running, on any instance.",
        "gauge",
        &rows(&|d| d.running as f64),
    );
    gauge(
        out,
        "pm_job_queue_oldest_ready_seconds",
        "How long the oldest ready job has waited.",
        "gauge",
        &rows(&|d| d.oldest_ready_ms as f64 / 1000.0),
    );
    let workers: Vec<(String, f64)> = s
        .actors
        .jobs
        .workers
        .iter()
        .map(|(q, n)| (format!("queue=\"{q}\""), *n as f64))
        .collect();
    gauge(
        out,
        "pm_job_workers",
        "Workers of each queue on this instance.",
        "gauge",
        &workers,
    );
}
