//! `/admin/actors`: what every supervised actor is doing, and restarting one.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    let r = OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(restart));
    // Test builds only: not part of the API, so not in the document.
    #[cfg(feature = "fault-injection")]
    let r = r.route("/admin/actors/{name}/fault", axum::routing::post(fault));
    r
}

#[utoipa::path(
    get,
    path = "/admin/actors",
    tag = "operations",
    operation_id = "list_actors",
    summary = "Every supervised actor",
    responses((status = 200, description = "A snapshot of each actor.", body = Vec<Object>)),
)]
async fn list(State(s): State<AppState>) -> Json<Vec<pm_supervisors::ActorSnapshot>> {
    Json(s.actors.registry.snapshots())
}

fn entry(s: &AppState, name: &str) -> Result<std::sync::Arc<dyn pm_supervisors::ActorEntry>, ApiError> {
    s.actors
        .registry
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no actor named {name}")))
}

/// The snapshot plus the actor's own state; an actor too busy to answer within a second is
/// shown without it.
#[utoipa::path(
    get,
    path = "/admin/actors/{name}",
    tag = "operations",
    operation_id = "get_actor",
    summary = "One actor, with its own state",
    params(("name" = String, Path, description = "The actor's name, e.g. `store.catalog`.")),
    description = "A job queue's gate (`jobs.<queue>.queue`) adds `queue_depth` (`ready`, \
        `scheduled`, `running`, `oldest_ready_ms`); its workers' (`jobs.<queue>.worker.<n>`) \
        `state` holds the running job, `finished` and `outcomes` (finished runs by outcome: \
        `succeeded`, `retrying`, `failed`, ...).",
    responses((status = 200, description = "The snapshot, and `state` (or `state_error`).", body = Object), crate::openapi::NotFound),
)]
async fn show(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let e = entry(&s, &name)?;
    let mut body = serde_json::to_value(e.snapshot()).map_err(|e| ApiError::Internal(e.to_string()))?;
    let state = e.observe(Duration::from_secs(1)).await;
    if let Value::Object(m) = &mut body {
        match state {
            Some(v) => m.insert("state".into(), v),
            None => m.insert("state_error".into(), json!("the actor did not answer within 1s")),
        };
        // A queue's gate (`jobs.<queue>.queue`) shows the queue's depth as well.
        let queue = name
            .strip_prefix("jobs.")
            .and_then(|r| r.strip_suffix(".queue"))
            .and_then(|q| q.parse::<pm_storage::jobs::Queue>().ok());
        if let Some(q) = queue {
            match s.actors.jobs.gate(q).send(pm_actors::jobs::QueueDepthOf).await {
                Ok(d) => m.insert("queue_depth".into(), json!(d)),
                Err(e) => m.insert("queue_depth_error".into(), json!(e.to_string())),
            };
        }
    }
    Ok(Json(body))
}

#[utoipa::path(
    post,
    path = "/admin/actors/{name}/restart",
    tag = "operations",
    operation_id = "restart_actor",
    summary = "Restart an actor",
    params(("name" = String, Path, description = "The actor's name, e.g. `store.catalog`.")),
    responses((status = 202, description = "`{\"actor\", \"status\": \"restarting\"}`", body = Object), crate::openapi::NotFound),
)]
async fn restart(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let e = entry(&s, &name)?;
    tracing::warn!(actor = %name, "restart requested by an operator");
    e.restart("restarted by an operator");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "actor": name, "status": "restarting" })),
    ))
}

#[cfg(feature = "fault-injection")]
#[derive(serde::Deserialize)]
struct Fault {
    action: String,
}

/// Test-only: `{"action": "panic" | "panic_async" | "crash" | "pause" | "resume"}`: a
/// panicking request (sync or async handler), a crash that loses the actor's state (restarts
/// even a stateless gate), or holding the handlers so that the mailbox fills.
#[cfg(feature = "fault-injection")]
async fn fault(
    State(s): State<AppState>,
    Path(name): Path<String>,
    crate::extract::Json(f): crate::extract::Json<Fault>,
) -> Result<StatusCode, ApiError> {
    let e = entry(&s, &name)?;
    match f.action.as_str() {
        "panic" => e.inject_panic(false).await,
        "panic_async" => e.inject_panic(true).await,
        "crash" => e.inject_crash(),
        "pause" => e.pause(true),
        "resume" => e.pause(false),
        other => return Err(ApiError::invalid("action", format!("unknown action {other:?}"))),
    }
    Ok(StatusCode::NO_CONTENT)
}
