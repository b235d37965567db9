//! Health endpoints a load balancer or orchestrator can act on: 200 when healthy, 503 when not.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pm_config::Database;
use pm_supervisors::{ActorStatus, SupervisorStatus};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(databases))
        .routes(routes!(redis))
        .routes(routes!(actors))
}

fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Liveness: the process serves, and its root supervisor has not given up.
#[utoipa::path(get, path = "/health", tag = "operations", operation_id = "health",
    summary = "Liveness", security(()),
    responses(
        (status = 200, description = "`{\"status\": \"ok\", \"version\", \"uptime_secs\"}`", body = Object),
        (status = 503, description = "The root supervisor gave up (`\"status\": \"escalated\"`); the process exits soon.", body = Object),
    ))]
async fn live(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let ok = !s.is_escalated();
    let body = json!({
        "status": if ok { "ok" } else { "escalated" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": s.started.elapsed().as_secs(),
    });
    (status(ok), Json(body))
}

/// Each of the seven databases, pinged through its store actor, concurrently.
#[utoipa::path(get, path = "/health/db", tag = "operations", operation_id = "health_databases",
    summary = "Each database, pinged", security(()),
    responses(
        (status = 200, description = "Every database answered: status and latency of each.", body = Object),
        (status = 503, description = "A database did not answer; its entry says why.", body = Object),
    ))]
async fn databases(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let stores = &s.actors.stores;
    let pings = futures::future::join_all(Database::ALL.map(|db| async move {
        let r = tokio::time::timeout(Duration::from_secs(5), stores.ping(db)).await;
        (db, r)
    }))
    .await;
    let mut all_ok = true;
    let mut out = serde_json::Map::new();
    for (db, r) in pings {
        let entry = match r {
            Ok(Ok(latency)) => json!({ "status": "ok", "latency_ms": ms(latency) }),
            Ok(Err(e)) => {
                all_ok = false;
                json!({ "status": "error", "error": e.to_string() })
            }
            Err(_) => {
                all_ok = false;
                json!({ "status": "error", "error": "no answer within 5s" })
            }
        };
        out.insert(db.to_string(), entry);
    }
    let body = json!({ "status": if all_ok { "ok" } else { "error" }, "databases": out });
    (status(all_ok), Json(body))
}

#[utoipa::path(get, path = "/health/redis", tag = "operations", operation_id = "health_redis",
    summary = "Redis, pinged", security(()),
    responses(
        (status = 200, description = "Redis answered, or none is configured (`not_configured`).", body = Object),
        (status = 503, description = "Redis did not answer.", body = Object),
    ))]
async fn redis(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let Some(redis) = &s.redis else {
        return (StatusCode::OK, Json(json!({ "status": "not_configured" })));
    };
    match redis.ping(Duration::from_secs(2)).await {
        Ok(latency) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "latency_ms": ms(latency) })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "error", "error": e.to_string() })),
        ),
    }
}

/// 503 if any actor is stuck or stopped, or any supervisor has escalated.
#[utoipa::path(get, path = "/health/actors", tag = "operations", operation_id = "health_actors",
    summary = "The actors and their supervisors", security(()),
    responses(
        (status = 200, description = "Every actor runs.", body = Object),
        (status = 503, description = "An actor is stuck or stopped, or a supervisor gave up.", body = Object),
    ))]
async fn actors(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let actors = s.actors.registry.snapshots();
    let supervisors = s.actors.registry.supervisors();
    let down: Vec<Value> = actors
        .iter()
        .filter(|a| !matches!(a.status, ActorStatus::Running | ActorStatus::Starting))
        .map(|a| json!({ "name": a.name, "status": a.status, "last_error": a.last_error }))
        .collect();
    let escalated: Vec<&pm_supervisors::registry::SupervisorSnapshot> = supervisors
        .iter()
        .filter(|s| s.status != SupervisorStatus::Running)
        .collect();
    let ok = down.is_empty() && escalated.is_empty() && !s.is_escalated();
    let body = json!({
        "status": if ok { "ok" } else { "error" },
        "actors": actors.len(),
        "down": down,
        "supervisors": supervisors,
    });
    (status(ok), Json(body))
}
