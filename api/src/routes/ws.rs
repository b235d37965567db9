//! `GET /api/v1/ws`: live events and commands over a WebSocket.
//!
//! Authentication: the same bearer token as the REST API, in the `Authorization` header, or —
//! browsers cannot set headers on a WebSocket — as a first message
//! `{"type":"auth","token":"..."}` within `server.ws_auth_timeout_secs`. The connection closes
//! when the token expires (clients reconnect with a fresh one).
//!
//! Client messages (JSON text):
//!
//! - `{"type":"subscribe","topic":"..."}` / `{"type":"unsubscribe","topic":"..."}`; topics and
//!   who may have them: `jobs.<queue>` (admins), `jobs.<queue>.<id>` (its creator, admins),
//!   `imports.supplier.<id>` (every import job of a supplier: `imports:read`),
//!   `catalog.products` and `catalog.products.<id>` (`catalog:read`), `notifications` (the
//!   caller's own);
//! - `{"type":"cancel","queue":"imports","id":"..."}`: cancels a job (its creator, admins);
//! - `{"type":"ping"}`: answered `{"type":"pong"}`.
//!
//! Server messages: `ready`, `subscribed`, `unsubscribed`, `event` (`topic`, `event`, `data`),
//! `lagged` (`missed`: events dropped because this connection read too slowly), `cancelled`,
//! `pong`, and `error` (`code`, `message`, and the `topic` or command it is about).
//!
//! Every connection has its own bounded buffer of events ([`pm_actors::Hub`]): publishers never
//! wait for it. Writing to the socket is the only thing a slow client slows down: its own loop.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use pm_actors::events::Delivery;
use pm_actors::jobs::{CancelJob, GetJob};
use pm_domain::Permission;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::jobs::{may_see, parse_queue};
use crate::auth::principal::resolve;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

/// Close codes: 1008 policy violation (auth refused), 4401 (token expired).
const POLICY: u16 = 1008;
const EXPIRED: u16 = 4401;

/// A request that is no WebSocket handshake is a 400 problem like any other error (axum's own
/// rejection is plain text).
#[utoipa::path(
    get,
    path = "/ws",
    tag = "live",
    operation_id = "websocket",
    summary = "Live events and commands over a WebSocket",
    description = "A WebSocket handshake (`Connection: Upgrade`, `Upgrade: websocket`). \
        Authenticated by the `Authorization` header, or (browsers) by a first message \
        `{\"type\":\"auth\",\"token\":\"...\"}`. Then `subscribe`/`unsubscribe` to topics \
        (`jobs.<queue>`, `jobs.<queue>.<id>`, `imports.supplier.<id>`, `catalog.products`, `catalog.products.<id>`, \
        `notifications`), `cancel` a job, `ping`. The connection closes when the token expires.",
    security((), ("bearer" = []), ("api_key" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        crate::openapi::BadRequest,
        crate::openapi::Unauthorized,
    ),
)]
async fn upgrade(
    State(s): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // A header, when given, must be valid: refused before the upgrade with a plain 401.
    let token = crate::auth::principal::bearer(&headers);
    let principal = match token {
        Some(t) => Some(resolve(&s, t).await?),
        None => None,
    };
    let ws = ws.map_err(|e| ApiError::BadRequest(format!("not a websocket handshake: {}", e.body_text())))?;
    let max = s.settings.server.ws_max_message_bytes;
    Ok(ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| connection(s, socket, principal)))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMsg {
    Auth { token: String },
    Subscribe { topic: String },
    Unsubscribe { topic: String },
    Cancel { queue: String, id: String },
    Ping,
}

fn text(v: Value) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

fn error(code: &str, message: impl std::fmt::Display, about: Value) -> Message {
    text(json!({ "type": "error", "code": code, "message": message.to_string(), "about": about }))
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_owned()),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Waits for `{"type":"auth"}` as the first message.
async fn first_auth(s: &AppState, socket: &mut WebSocket) -> Result<(Principal, Option<u64>), String> {
    let wait = Duration::from_secs(s.settings.server.ws_auth_timeout_secs.max(1));
    let msg = match tokio::time::timeout(wait, socket.recv()).await {
        Err(_) => return Err("no auth message in time".into()),
        Ok(None | Some(Err(_))) => return Err("connection closed".into()),
        Ok(Some(Ok(m))) => m,
    };
    let Message::Text(t) = msg else {
        return Err("the first message must be {\"type\":\"auth\",\"token\":...}".into());
    };
    match serde_json::from_str::<ClientMsg>(&t) {
        Ok(ClientMsg::Auth { token }) => resolve(s, &token).await.map_err(|e| e.to_string()),
        _ => Err("the first message must be {\"type\":\"auth\",\"token\":...}".into()),
    }
}

/// Counts a live connection in `pm_ws_connections` for as long as it lives.
struct Live;

impl Live {
    fn new() -> Self {
        metrics::gauge!("pm_ws_connections").increment(1.0);
        Self
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        metrics::gauge!("pm_ws_connections").decrement(1.0);
    }
}

async fn connection(s: AppState, mut socket: WebSocket, principal: Option<(Principal, Option<u64>)>) {
    let (principal, expires) = match principal {
        Some(p) => p,
        None => match first_auth(&s, &mut socket).await {
            Ok(p) => p,
            Err(e) => {
                let _ = socket.send(error("unauthorized", &e, Value::Null)).await;
                return close(socket, POLICY, "unauthorized").await;
            }
        },
    };
    let _live = Live::new();
    let mut sub = s.actors.hub.subscriber(s.settings.server.ws_buffer_events);
    let ready =
        json!({ "type": "ready", "principal": principal, "buffer": s.settings.server.ws_buffer_events });
    if socket.send(text(ready)).await.is_err() {
        return;
    }
    let every = Duration::from_secs(s.settings.server.ws_ping_secs.max(1));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut unanswered = 0u32;
    let expiry = async {
        match expires {
            Some(exp) => {
                let now = chrono::Utc::now().timestamp().max(0) as u64;
                tokio::time::sleep(Duration::from_secs(exp.saturating_sub(now))).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                metrics::counter!("pm_ws_messages_total", "direction" => "in").increment(1);
                let reply = match msg {
                    Message::Text(t) => Some(command(&s, &principal, &sub, &t).await),
                    Message::Pong(_) => {
                        unanswered = 0;
                        None
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) => None,
                    Message::Binary(_) => Some(error("bad_message", "messages are JSON text", Value::Null)),
                };
                if let Some(r) = reply {
                    if socket.send(r).await.is_err() {
                        break;
                    }
                }
            }
            delivery = sub.recv() => {
                let Some(d) = delivery else { break };
                let out = match d {
                    Delivery::Event(e) => json!({ "type": "event", "topic": e.topic, "event": e.event, "data": e.data }),
                    Delivery::Lagged(n) => {
                        metrics::counter!("pm_ws_lagged_events_total").increment(n);
                        json!({ "type": "lagged", "missed": n })
                    }
                };
                metrics::counter!("pm_ws_messages_total", "direction" => "out").increment(1);
                if socket.send(text(out)).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if unanswered >= 2 {
                    tracing::debug!("websocket closed: no pong");
                    break;
                }
                unanswered += 1;
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            () = &mut expiry => {
                let _ = socket.send(error("token_expired", "the token expired; reconnect with a fresh one", Value::Null)).await;
                return close(socket, EXPIRED, "token expired").await;
            }
        }
    }
}

/// May `p` subscribe to `topic`? `Ok(topic)` with aliases resolved (`notifications`).
async fn allowed(s: &AppState, p: &Principal, topic: &str) -> Result<String, (&'static str, String)> {
    let forbidden = |why: &str| ("forbidden", why.to_owned());
    let parts: Vec<&str> = topic.split('.').collect();
    match parts.as_slice() {
        ["notifications"] => match p.user_id() {
            Some(u) => Ok(format!("notifications.{u}")),
            None => Err(forbidden("api keys have no notifications")),
        },
        ["notifications", id] => match p.user_id() {
            Some(u) if u.to_string() == *id => Ok(topic.to_owned()),
            _ => Err(forbidden("only your own notifications")),
        },
        ["catalog", "products"] | ["catalog", "products", _] => {
            if p.can(Permission::CatalogRead) {
                Ok(topic.to_owned())
            } else {
                Err(forbidden("needs catalog:read"))
            }
        }
        ["imports", "supplier", id] => {
            Uuid::try_parse(id).map_err(|_| ("unknown_topic", "not a supplier id".to_owned()))?;
            if p.can(Permission::ImportsRead) {
                Ok(topic.to_owned())
            } else {
                Err(forbidden("needs imports:read"))
            }
        }
        ["jobs", queue] => {
            parse_queue(queue).map_err(|e| ("unknown_topic", e.to_string()))?;
            if p.can(Permission::Admin) {
                Ok(topic.to_owned())
            } else {
                Err(forbidden("all jobs of a queue need admin; subscribe to your job"))
            }
        }
        ["jobs", queue, id] => {
            let q = parse_queue(queue).map_err(|e| ("unknown_topic", e.to_string()))?;
            let id = Uuid::try_parse(id).map_err(|_| ("unknown_topic", "not a job id".to_owned()))?;
            match s.actors.jobs.gate(q).send(GetJob(id)).await {
                Ok(job) if may_see(p, &job) => Ok(topic.to_owned()),
                Ok(_) | Err(pm_supervisors::CallError::Handler(pm_storage::StoreError::NotFound { .. })) => {
                    Err(("not_found", format!("job {id} not found")))
                }
                Err(e) => Err(("unavailable", e.to_string())),
            }
        }
        _ => Err(("unknown_topic", format!("no topic {topic:?}"))),
    }
}

async fn command(s: &AppState, p: &Principal, sub: &pm_actors::events::Subscription, raw: &str) -> Message {
    let msg = match serde_json::from_str::<ClientMsg>(raw) {
        Ok(m) => m,
        Err(e) => return error("bad_message", e, Value::Null),
    };
    match msg {
        ClientMsg::Auth { .. } => error("bad_message", "already authenticated", Value::Null),
        ClientMsg::Ping => text(json!({ "type": "pong" })),
        ClientMsg::Subscribe { topic } => match allowed(s, p, &topic).await {
            Ok(t) => {
                sub.subscribe(t.clone());
                text(json!({ "type": "subscribed", "topic": t }))
            }
            Err((code, why)) => error(code, why, json!({ "topic": topic })),
        },
        ClientMsg::Unsubscribe { topic } => {
            let t = match topic.as_str() {
                "notifications" => p
                    .user_id()
                    .map_or(topic.clone(), |u| format!("notifications.{u}")),
                _ => topic.clone(),
            };
            sub.unsubscribe(&t);
            text(json!({ "type": "unsubscribed", "topic": t }))
        }
        ClientMsg::Cancel { queue, id } => {
            let about = json!({ "command": "cancel", "queue": queue, "id": id });
            let run = async {
                let q = parse_queue(&queue)?;
                let id = super::products::parse_id(&id)?;
                let job = s.actors.jobs.gate(q).send(GetJob(id)).await?;
                if !may_see(p, &job) {
                    return Err(ApiError::NotFound(format!("job {id} not found")));
                }
                Ok(s.actors.jobs.gate(q).send(CancelJob(id)).await?)
            };
            match run.await {
                Ok((outcome, job)) => text(json!({ "type": "cancelled", "outcome": outcome, "job": job })),
                Err(e) => error(e.code(), &e, about),
            }
        }
    }
}
