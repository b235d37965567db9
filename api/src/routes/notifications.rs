//! `/api/v1/notifications`: the caller's own notifications.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pm_actors::store::core::{ListNotifications, MarkAllNotificationsRead, MarkNotificationRead};
use pm_storage::catalog::Page;
use pm_storage::core::notifications::Notification;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::products::parse_id;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{page_limit, Query};
use crate::openapi::{Forbidden, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read_all))
        .routes(routes!(read_one))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only the unread ones.
    unread: Option<bool>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/notifications",
    tag = "notifications",
    operation_id = "list_notifications",
    summary = "List the caller's notifications",
    description = "Users only (an API key gets 403).",
    params(ListQuery),
    responses((status = 200, description = "A page of notifications, newest first.", body = Page<Notification>), Forbidden),
)]
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

#[utoipa::path(
    post,
    path = "/notifications/{id}/read",
    tag = "notifications",
    operation_id = "mark_notification_read",
    summary = "Mark a notification read",
    description = "Users only (an API key gets 403).",
    params(("id" = Uuid, Path, description = "The notification's id.")),
    responses((status = 204, description = "Marked."), Forbidden, NotFound),
)]
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

#[derive(Serialize, ToSchema)]
struct Marked {
    /// How many were unread.
    marked: u64,
}

#[utoipa::path(
    post,
    path = "/notifications/read-all",
    tag = "notifications",
    operation_id = "mark_all_notifications_read",
    summary = "Mark all the caller's notifications read",
    description = "Users only (an API key gets 403).",
    responses((status = 200, description = "How many were marked.", body = Marked), Forbidden),
)]
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
