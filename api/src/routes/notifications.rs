//! `/api/v1/notifications`: the caller's own notifications.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pm_actors::store::core::{ListNotifications, MarkAllNotificationsRead, MarkNotificationRead};
use pm_storage::catalog::Page;
use pm_storage::core::notifications::Notification;
use serde::{Deserialize, Serialize};

use super::products::parse_id;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{page_limit, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(list))
        .route("/notifications/read-all", post(read_all))
        .route("/notifications/{id}/read", post(read_one))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    unread: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Notification>>, ApiError> {
    let user_id = p.require_user()?;
    let limit = page_limit(q.limit)?;
    let msg = ListNotifications {
        user_id,
        unread_only: q.unread.unwrap_or(false),
        limit,
        cursor: q.cursor,
    };
    Ok(Json(s.actors.stores.core.send(msg).await?))
}

async fn read_one(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = p.require_user()?;
    s.actors
        .stores
        .core
        .send(MarkNotificationRead {
            user_id,
            id: parse_id(&id)?,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Marked {
    marked: u64,
}

async fn read_all(State(s): State<AppState>, p: Principal) -> Result<Json<Marked>, ApiError> {
    let user_id = p.require_user()?;
    let marked = s
        .actors
        .stores
        .core
        .send(MarkAllNotificationsRead { user_id })
        .await?;
    Ok(Json(Marked { marked }))
}
