//! Admin management of users, roles, permissions, API keys and application settings.
//! Every route here sits behind `require_admin`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
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
use uuid::Uuid;

use super::products::parse_id;
use crate::auth::{password, tokens, Principal};
use crate::error::ApiError;
use crate::extract::{nullable, page_limit, Json as Body, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/roles", get(list_roles).post(create_role))
        .route(
            "/roles/{id}",
            axum::routing::patch(update_role).delete(delete_role),
        )
        .route("/permissions", get(list_permissions))
        .route("/api-keys", get(list_keys).post(create_key))
        .route("/api-keys/{id}", delete(revoke_key))
        .route("/settings", get(list_settings))
        .route("/settings/{key}", put(put_setting).delete(delete_setting))
        .route("/activity", get(list_activity))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityQuery {
    user_id: Option<Uuid>,
    entity: Option<String>,
    entity_id: Option<String>,
    since: Option<chrono::DateTime<Utc>>,
    until: Option<chrono::DateTime<Utc>>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/v1/activity`: who changed what, newest first (admins).
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
    username: String,
    password: String,
    email: Option<String>,
    display_name: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

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

async fn get_user(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<User>, ApiError> {
    Ok(Json(
        s.actors.stores.core.send(GetUser { id: parse_id(&id)? }).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUser {
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    display_name: Option<Option<String>>,
    password: Option<String>,
    is_active: Option<bool>,
    roles: Option<Vec<String>>,
}

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

async fn list_roles(State(s): State<AppState>) -> Result<Json<Vec<Role>>, ApiError> {
    Ok(Json(s.actors.stores.core.send(ListRoles).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoleBody {
    name: String,
    description: Option<String>,
    permissions: Vec<Permission>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchRole {
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    permissions: Option<Vec<Permission>>,
}

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

#[derive(Serialize)]
struct PermissionInfo {
    name: Permission,
}

async fn list_permissions() -> Json<Vec<PermissionInfo>> {
    Json(
        Permission::ALL
            .into_iter()
            .map(|name| PermissionInfo { name })
            .collect(),
    )
}

async fn list_keys(State(s): State<AppState>) -> Result<Json<Vec<ApiKey>>, ApiError> {
    Ok(Json(s.actors.stores.core.send(ListApiKeys).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKeyBody {
    name: String,
    scopes: Vec<Permission>,
    expires_in_days: Option<u32>,
}

/// The new key, shown this once.
#[derive(Serialize)]
struct CreatedKey {
    #[serde(flatten)]
    api_key: ApiKey,
    key: String,
}

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

async fn list_settings(State(s): State<AppState>) -> Result<Json<Vec<AppSetting>>, ApiError> {
    Ok(Json(s.actors.stores.core.send(ListSettings).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingBody {
    value: serde_json::Value,
}

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
