//! Admin management of users, roles, permissions, API keys and application settings.
//! Every route here sits behind `require_admin`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{Duration, Utc};
use pm_actors::changes::By;
use pm_actors::store::core::*;
use pm_domain::Permission;
use pm_domain::{text, TextKind};
use pm_storage::catalog::Page;
use pm_storage::core::api_keys::ApiKey;
use pm_storage::core::roles::Role;
use pm_storage::core::settings::AppSetting;
use pm_storage::core::token_hash;
use pm_storage::core::users::{NewUser, User, UserPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::products::parse_id;
use crate::auth::{password, tokens, Principal};
use crate::error::ApiError;
use crate::extract::{nullable, page_limit, Json as Body, Query};
use crate::openapi::{Conflict, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(update_role, delete_role))
        .routes(routes!(list_permissions))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(list_settings))
        .routes(routes!(put_setting, delete_setting))
        .routes(routes!(list_activity))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ActivityQuery {
    /// Writes by this user.
    user_id: Option<Uuid>,
    /// e.g. `product`, `user`.
    entity: Option<String>,
    entity_id: Option<String>,
    /// At or after this time.
    since: Option<chrono::DateTime<Utc>>,
    /// Before this time.
    until: Option<chrono::DateTime<Utc>>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /api/v1/activity`: who changed what, newest first (admins).
#[utoipa::path(
    get,
    path = "/activity",
    tag = "access",
    operation_id = "list_activity",
    summary = "Who changed what, newest first",
    params(ActivityQuery),
    responses((status = 200, description = "A page of the activity log.", body = Page<pm_storage::analytics::Activity>)),
)]
async fn list_activity(
    State(s): State<AppState>,
    Query(q): Query<ActivityQuery>,
) -> Result<Json<Page<pm_storage::analytics::Activity>>, ApiError> {
    let f = pm_storage::analytics::ActivityFilter {
        user_id: q.user_id,
        entity: q.entity,
        entity_id: q.entity_id,
        since: q.since,
        until: q.until,
        cursor: q.cursor,
        limit: page_limit(q.limit)?,
    };
    Ok(Json(
        s.actors
            .stores
            .analytics
            .send(pm_actors::store::analytics::ListActivity(f))
            .await?,
    ))
}

fn check_username(u: &str) -> Result<(), ApiError> {
    let ok =
        (3..=64).contains(&u.len()) && u.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "username",
            "3 to 64 letters, digits or . _ - @",
        ))
    }
}

/// An e-mail address as people type them: one `@`, a local part, a domain with a dot, no
/// spaces or control characters, at most 254 characters. (Delivery is the only real check.)
fn check_email(e: &str) -> Result<(), ApiError> {
    let bad = || ApiError::invalid("email", format!("not an e-mail address: {e:?}"));
    text::check_required(e, TextKind::Line, 254).map_err(|_| bad())?;
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The text fields of a user: e-mail and display name.
fn check_person(email: Option<&str>, display_name: Option<&str>) -> Result<(), ApiError> {
    if let Some(e) = email {
        check_email(e)?;
    }
    if let Some(d) = display_name {
        text::check_required(d.trim(), TextKind::Line, 200)
            .map_err(|e| ApiError::invalid("display_name", e))?;
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserCreate)]
struct CreateUserBody {
    /// 3 to 64 letters, digits or `. _ - @`.
    #[schema(pattern = "^[A-Za-z0-9._@-]{3,64}$")]
    username: String,
    /// At least the configured strength (`auth.min_password_length`).
    password: String,
    /// An e-mail address, at most 254 characters.
    #[schema(max_length = 254)]
    email: Option<String>,
    #[schema(max_length = 200)]
    display_name: Option<String>,
    /// Role names; they must exist.
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "access",
    operation_id = "list_users",
    summary = "List users",
    params(ListQuery),
    responses((status = 200, description = "A page of users.", body = Page<User>)),
)]
async fn list_users(
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<User>>, ApiError> {
    let msg = ListUsers {
        limit: page_limit(q.limit)?,
        cursor: q.cursor,
    };
    Ok(Json(s.actors.stores.core.send(msg).await?))
}

#[utoipa::path(
    post,
    path = "/users",
    tag = "access",
    operation_id = "create_user",
    summary = "Create a user",
    request_body = CreateUserBody,
    responses((status = 201, description = "The user as stored.", body = User), Conflict),
)]
async fn create_user(
    State(s): State<AppState>,
    p: Principal,
    Body(b): Body<CreateUserBody>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    check_username(&b.username)?;
    check_person(b.email.as_deref(), b.display_name.as_deref())?;
    password::check_strength(&b.password)?;
    let password_hash = password::hash(b.password).await?;
    let user = NewUser {
        username: b.username,
        email: b.email,
        display_name: b.display_name,
        password_hash,
        roles: b.roles,
    };
    let user = s
        .actors
        .stores
        .core
        .send(CreateUser { user }.by(p.origin()))
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "access",
    operation_id = "get_user",
    summary = "Get a user",
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses((status = 200, description = "The user.", body = User), NotFound),
)]
async fn get_user(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<User>, ApiError> {
    Ok(Json(
        s.actors.stores.core.send(GetUser { id: parse_id(&id)? }).await?,
    ))
}

/// A partial update; a new password or a deactivation ends the user's sessions.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserPatch)]
struct PatchUser {
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    display_name: Option<Option<String>>,
    password: Option<String>,
    is_active: Option<bool>,
    roles: Option<Vec<String>>,
}

#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "access",
    operation_id = "update_user",
    summary = "Update a user",
    params(("id" = Uuid, Path, description = "The user's id.")),
    request_body = PatchUser,
    responses((status = 200, description = "The user as stored.", body = User), NotFound, Conflict),
)]
async fn update_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(b): Body<PatchUser>,
) -> Result<Json<User>, ApiError> {
    let id = parse_id(&id)?;
    check_person(
        b.email.as_ref().and_then(|e| e.as_deref()),
        b.display_name.as_ref().and_then(|d| d.as_deref()),
    )?;
    let password_hash = match b.password {
        Some(pw) => {
            password::check_strength(&pw)?;
            Some(password::hash(pw).await?)
        }
        None => None,
    };
    // A new password or a deactivation ends the user's sessions.
    let new_password = password_hash.is_some();
    let end_sessions = new_password || b.is_active == Some(false);
    let patch = UserPatch {
        email: b.email,
        display_name: b.display_name,
        password_hash,
        is_active: b.is_active,
        roles: b.roles,
    };
    let user = s
        .actors
        .stores
        .core
        .send(UpdateUser { id, patch }.by(p.origin()))
        .await?;
    if end_sessions {
        s.actors
            .stores
            .core
            .send(RevokeUserTokens { user_id: id })
            .await?;
    }
    if new_password && user.username == "admin" {
        forget_initial_password(&s);
    }
    Ok(Json(user))
}

/// The generated first password of `admin`, once it is no longer the password: the file would
/// only mislead (and it is a secret lying on disk).
pub(crate) fn forget_initial_password(s: &AppState) {
    let path = s.settings.storage.data_dir.join("initial-admin-password");
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(path = %path.display(), "removed the initial admin password file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the initial admin password file")
        }
    }
}

#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "access",
    operation_id = "delete_user",
    summary = "Delete a user",
    description = "Deleting oneself is refused (422).",
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses((status = 204, description = "Deleted."), NotFound),
)]
async fn delete_user(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if p.user_id() == Some(id) {
        return Err(ApiError::invalid("id", "you cannot delete yourself"));
    }
    s.actors
        .stores
        .core
        .send(DeleteUser { id }.by(p.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/roles",
    tag = "access",
    operation_id = "list_roles",
    summary = "List roles",
    responses((status = 200, description = "Every role.", body = Vec<Role>)),
)]
async fn list_roles(State(s): State<AppState>) -> Result<Json<Vec<Role>>, ApiError> {
    Ok(Json(s.actors.stores.core.send(ListRoles).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RoleCreate)]
struct CreateRoleBody {
    /// 3 to 64 letters, digits or `. _ - @`.
    #[schema(pattern = "^[A-Za-z0-9._@-]{3,64}$")]
    name: String,
    #[schema(max_length = 1000)]
    description: Option<String>,
    permissions: Vec<Permission>,
}

#[utoipa::path(
    post,
    path = "/roles",
    tag = "access",
    operation_id = "create_role",
    summary = "Create a role",
    request_body = CreateRoleBody,
    responses((status = 201, description = "The role as stored.", body = Role), Conflict),
)]
async fn create_role(
    State(s): State<AppState>,
    p: Principal,
    Body(b): Body<CreateRoleBody>,
) -> Result<(StatusCode, Json<Role>), ApiError> {
    check_username(&b.name).map_err(|_| ApiError::invalid("name", "3 to 64 letters, digits or . _ - @"))?;
    if let Some(d) = &b.description {
        text::check(d, TextKind::Multiline, 1000).map_err(|e| ApiError::invalid("description", e))?;
    }
    let msg = CreateRole {
        name: b.name,
        description: b.description,
        permissions: b.permissions,
    };
    let role = s.actors.stores.core.send(msg.by(p.origin())).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RolePatch)]
struct PatchRole {
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    permissions: Option<Vec<Permission>>,
}

#[utoipa::path(
    patch,
    path = "/roles/{id}",
    tag = "access",
    operation_id = "update_role",
    summary = "Update a role",
    params(("id" = Uuid, Path, description = "The role's id.")),
    request_body = PatchRole,
    responses((status = 200, description = "The role as stored.", body = Role), NotFound, Conflict),
)]
async fn update_role(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(b): Body<PatchRole>,
) -> Result<Json<Role>, ApiError> {
    let id = parse_id(&id)?;
    let role = s
        .actors
        .stores
        .core
        .send(
            UpdateRole {
                id,
                description: b.description,
                permissions: b.permissions,
            }
            .by(p.origin()),
        )
        .await?;
    Ok(Json(role))
}

#[utoipa::path(
    delete,
    path = "/roles/{id}",
    tag = "access",
    operation_id = "delete_role",
    summary = "Delete a role",
    description = "Built-in roles cannot be deleted (409).",
    params(("id" = Uuid, Path, description = "The role's id.")),
    responses((status = 204, description = "Deleted."), NotFound, Conflict),
)]
async fn delete_role(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    s.actors
        .stores
        .core
        .send(DeleteRole { id }.by(p.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct PermissionInfo {
    name: Permission,
}

#[utoipa::path(
    get,
    path = "/permissions",
    tag = "access",
    operation_id = "list_permissions",
    summary = "List the permissions",
    responses((status = 200, description = "Every permission.", body = Vec<PermissionInfo>)),
)]
async fn list_permissions() -> Json<Vec<PermissionInfo>> {
    Json(
        Permission::ALL
            .into_iter()
            .map(|name| PermissionInfo { name })
            .collect(),
    )
}

#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "access",
    operation_id = "list_api_keys",
    summary = "List API keys",
    responses((status = 200, description = "Every key (never the secret).", body = Vec<ApiKey>)),
)]
async fn list_keys(State(s): State<AppState>) -> Result<Json<Vec<ApiKey>>, ApiError> {
    Ok(Json(s.actors.stores.core.send(ListApiKeys).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApiKeyCreate)]
struct CreateKeyBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// The permissions the key holds.
    #[schema(min_items = 1)]
    scopes: Vec<Permission>,
    /// Absent: the key never expires (revoke it instead).
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<u32>,
}

/// The new key, shown this once.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyCreated)]
struct CreatedKey {
    #[serde(flatten)]
    api_key: ApiKey,
    /// The key: `pmk_<prefix>_<secret>`, for `Authorization: Bearer ...`.
    key: String,
}

#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "access",
    operation_id = "create_api_key",
    summary = "Create an API key",
    request_body = CreateKeyBody,
    responses((status = 201, description = "The key, with its secret shown this once.", body = CreatedKey)),
)]
async fn create_key(
    State(s): State<AppState>,
    p: Principal,
    Body(b): Body<CreateKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    pm_domain::text::check_required(b.name.trim(), pm_domain::TextKind::Line, 200)
        .map_err(|e| ApiError::invalid("name", e))?;
    if b.scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "at least one permission"));
    }
    /// Ten years: beyond, a key should not expire by date but be revoked.
    const MAX_DAYS: u32 = 3650;
    if let Some(d) = b.expires_in_days {
        if !(1..=MAX_DAYS).contains(&d) {
            return Err(ApiError::invalid(
                "expires_in_days",
                format!("must be 1 to {MAX_DAYS}"),
            ));
        }
    }
    let (prefix, key) = tokens::new_api_key();
    let msg = CreateApiKey {
        name: b.name.trim().to_owned(),
        prefix,
        key_hash: token_hash(&key),
        scopes: b.scopes,
        created_by: p.user_id(),
        expires_at: b
            .expires_in_days
            .and_then(|d| Utc::now().checked_add_signed(Duration::days(i64::from(d)))),
    };
    let api_key = s.actors.stores.core.send(msg.by(p.origin())).await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { api_key, key })))
}

#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    tag = "access",
    operation_id = "revoke_api_key",
    summary = "Revoke an API key",
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses((status = 204, description = "Revoked."), NotFound),
)]
async fn revoke_key(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: Uuid = parse_id(&id)?;
    s.actors
        .stores
        .core
        .send(RevokeApiKey { id }.by(p.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/settings",
    tag = "access",
    operation_id = "list_settings",
    summary = "List the application settings",
    responses((status = 200, description = "Every setting.", body = Vec<AppSetting>)),
)]
async fn list_settings(State(s): State<AppState>) -> Result<Json<Vec<AppSetting>>, ApiError> {
    Ok(Json(s.actors.stores.core.send(ListSettings).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SettingSet)]
struct SettingBody {
    /// Any JSON value; strings at most 10,000 characters, nested at most 16 levels.
    value: serde_json::Value,
}

#[utoipa::path(
    put,
    path = "/settings/{key}",
    tag = "access",
    operation_id = "put_setting",
    summary = "Set an application setting",
    params(("key" = String, Path, description = "The setting's key: 1 to 100 letters, digits or . _ -.")),
    request_body = SettingBody,
    responses((status = 200, description = "The setting as stored.", body = AppSetting)),
)]
async fn put_setting(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    Body(b): Body<SettingBody>,
) -> Result<Json<AppSetting>, ApiError> {
    let ok = (1..=100).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok {
        return Err(ApiError::invalid("key", "1 to 100 letters, digits or . _ -"));
    }
    crate::extract::check_json_text(&b.value, 10_000).map_err(|e| ApiError::invalid("value", e))?;
    let setting = s
        .actors
        .stores
        .core
        .send(
            PutSetting {
                key: key.clone(),
                value: b.value,
                by: p.user_id(),
            }
            .by(p.origin()),
        )
        .await?;
    Ok(Json(setting))
}

#[utoipa::path(
    delete,
    path = "/settings/{key}",
    tag = "access",
    operation_id = "delete_setting",
    summary = "Delete an application setting",
    params(("key" = String, Path, description = "The setting's key: 1 to 100 letters, digits or . _ -.")),
    responses((status = 204, description = "Deleted."), NotFound),
)]
async fn delete_setting(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.actors
        .stores
        .core
        .send(DeleteSetting { key: key.clone() }.by(p.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
