//! `/api/v1/auth`: login, refresh (rotating), logout, me.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use pm_actors::store::core::{
    FindLogin, GetGrants, GetUser, InsertRefreshToken, RevokeRefreshFamily, RotateRefreshToken, TouchLogin,
};
use pm_storage::core::token_hash;
use pm_storage::core::tokens::RefreshRejected;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{password, tokens, Principal};
use crate::error::ApiError;
use crate::extract::Json as Body;
use crate::openapi::{Forbidden, TooManyRequests, Unauthorized};
use crate::AppState;

/// Routes open to anyone: login and refresh.
pub fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
}

/// Routes for authenticated callers.
pub fn private() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Self-service password change: the current password, then the new one. Every other session
/// of the user ends (refresh tokens revoked, access tokens with them); the answer is a fresh
/// token pair for this one.
#[utoipa::path(
    post,
    path = "/auth/password",
    tag = "auth",
    operation_id = "change_password",
    summary = "Change the caller's password",
    description = "Users only (an API key gets 403). A wrong current password is a 422 naming `current_password`; a weak new one names `new_password`.",
    request_body = PasswordChange,
    responses((status = 200, description = "A fresh token pair for this session; every other session ended.", body = TokenPair), Forbidden),
)]
async fn change_password(
    State(s): State<AppState>,
    p: Principal,
    Body(b): Body<PasswordChange>,
) -> Result<Json<TokenPair>, ApiError> {
    let id = p.require_user()?;
    let user = s.actors.stores.core.send(GetUser { id }).await?;
    let record = s
        .actors
        .stores
        .core
        .send(FindLogin {
            username: user.username.clone(),
        })
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the user no longer exists".into()))?;
    if !password::verify(b.current_password, record.password_hash).await? {
        return Err(ApiError::invalid(
            "current_password",
            "is not the current password",
        ));
    }
    password::check_strength(&b.new_password).map_err(|e| match e {
        ApiError::Invalid(mut errs) => {
            for e in &mut errs {
                e.field = "new_password".into();
            }
            ApiError::Invalid(errs)
        }
        other => other,
    })?;
    let patch = pm_storage::core::users::UserPatch {
        password_hash: Some(password::hash(b.new_password).await?),
        ..Default::default()
    };
    s.actors
        .stores
        .core
        .send(pm_actors::changes::By::by(
            pm_actors::store::core::UpdateUser { id, patch },
            p.origin(),
        ))
        .await?;
    s.actors
        .stores
        .core
        .send(pm_actors::store::core::RevokeUserTokens { user_id: id })
        .await?;
    s.generations.forget(id).await;
    if user.username == "admin" {
        crate::routes::access::forget_initial_password(&s);
    }
    Ok(Json(issue(&s, id, None, None).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct TokenPair {
    /// A JWT for `Authorization: Bearer ...`.
    access_token: String,
    /// For `POST /api/v1/auth/refresh`, once: each use gives a new one.
    refresh_token: String,
    #[schema(value_type = String, pattern = "^Bearer$")]
    token_type: &'static str,
    /// Seconds the access token is valid for.
    expires_in: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

const BAD_LOGIN: &str = "invalid username or password";

/// Issues an access token carrying the user's current permissions and a refresh token of
/// `family`.
async fn issue(
    s: &AppState,
    user: Uuid,
    family: Option<Uuid>,
    refresh: Option<String>,
) -> Result<TokenPair, ApiError> {
    let grants = s.actors.stores.core.send(GetGrants { id: user }).await?;
    if !grants.is_active {
        return Err(ApiError::Unauthorized("account disabled".into()));
    }
    let access = s
        .keys
        .issue(
            user,
            &grants.username,
            grants.permissions,
            grants.token_generation,
        )
        .map_err(|e| ApiError::Internal(format!("signing failed: {e}")))?;
    let refresh_token = match refresh {
        Some(t) => t,
        None => {
            let t = tokens::new_refresh_token();
            let expires_at = Utc::now() + s.keys.refresh_ttl;
            let family_id = family.unwrap_or_else(Uuid::now_v7);
            let msg = InsertRefreshToken {
                user_id: user,
                family_id,
                token_hash: token_hash(&t),
                expires_at,
            };
            s.actors.stores.core.send(msg).await?;
            t
        }
    };
    Ok(TokenPair {
        access_token: access,
        refresh_token,
        token_type: "Bearer",
        expires_in: s.keys.access_ttl.as_secs(),
    })
}

/// Every failure answers the same 401, whatever its reason (unknown user, wrong password,
/// disabled account), so that the answer confirms nothing; the reason is logged (never the
/// password) and the failure counts toward the limits. Successes do not count.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    operation_id = "login",
    summary = "Log in",
    description = "Every failure is the same 401. Failed attempts are limited per username and per client address (429 with Retry-After).",
    security(()),
    request_body = Login,
    responses((status = 200, description = "A token pair.", body = TokenPair), Unauthorized, TooManyRequests),
)]
async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    Body(b): Body<Login>,
) -> Result<Json<TokenPair>, ApiError> {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = crate::auth::limits::client_ip(peer.ip(), forwarded, &s.login_limits.trusted);
    if let Err(retry_after) = s.login_limits.check(&b.username, ip) {
        tracing::warn!(user = ?b.username, addr = %ip, reason = "too many failed attempts", "login refused");
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let fail = |reason: &'static str| {
        s.login_limits.failed(&b.username, ip);
        tracing::warn!(user = ?b.username, addr = %ip, reason, "login failed");
        ApiError::Unauthorized(BAD_LOGIN.into())
    };
    // A username no one could have (a NUL, a control character) is an unknown user, and
    // never reaches the database (PostgreSQL refuses NUL in a text).
    if pm_domain::text::check_required(&b.username, pm_domain::TextKind::Line, 200).is_err() {
        password::burn().await;
        return Err(fail("malformed username"));
    }
    let record = s
        .actors
        .stores
        .core
        .send(FindLogin {
            username: b.username.clone(),
        })
        .await?;
    let Some(record) = record else {
        password::burn().await;
        return Err(fail("unknown user"));
    };
    if !password::verify(b.password, record.password_hash).await? {
        return Err(fail("wrong password"));
    }
    if !record.is_active {
        return Err(fail("account disabled"));
    }
    let pair = issue(&s, record.id, None, None).await?;
    let _ = s.actors.stores.core.send(TouchLogin { id: record.id }).await;
    tracing::info!(user = ?b.username, addr = %ip, "login");
    Ok(Json(pair))
}

#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    operation_id = "refresh",
    summary = "Trade a refresh token for a new token pair",
    description = "A refresh token works once; presenting a spent one again revokes its whole family.",
    security(()),
    request_body = RefreshBody,
    responses((status = 200, description = "A new token pair (the refresh token is rotated).", body = TokenPair), Unauthorized),
)]
async fn refresh(State(s): State<AppState>, Body(b): Body<RefreshBody>) -> Result<Json<TokenPair>, ApiError> {
    let next = tokens::new_refresh_token();
    let msg = RotateRefreshToken {
        old_hash: token_hash(&b.refresh_token),
        new_hash: token_hash(&next),
        expires_at: Utc::now() + s.keys.refresh_ttl,
    };
    match s.actors.stores.core.send(msg).await? {
        Ok(rotated) => {
            let pair = issue(&s, rotated.user_id, Some(rotated.family_id), Some(next)).await;
            if pair.is_err() {
                // A disabled user keeps nothing.
                let _ = s
                    .actors
                    .stores
                    .core
                    .send(RevokeRefreshFamily {
                        token_hash: token_hash(&b.refresh_token),
                    })
                    .await;
            }
            Ok(Json(pair?))
        }
        Err(RefreshRejected::Unknown) => Err(ApiError::Unauthorized("unknown refresh token".into())),
        Err(RefreshRejected::Expired) => Err(ApiError::Unauthorized("refresh token expired".into())),
        Err(RefreshRejected::Revoked) => Err(ApiError::Unauthorized(
            "refresh token revoked (logged out, account deactivated or password changed); sign in again"
                .into(),
        )),
        Err(RefreshRejected::Reused) => {
            tracing::warn!("refresh token reused: its family is revoked");
            Err(ApiError::Unauthorized(
                "refresh token already used; sign in again".into(),
            ))
        }
    }
}

/// Ends the session of the refresh token, and the caller's access tokens now (the user's other
/// sessions refresh theirs).
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    operation_id = "logout",
    summary = "Log out",
    description = "Revokes the refresh token's family and the caller's access tokens.",
    request_body = RefreshBody,
    responses((status = 204, description = "The session is over.")),
)]
async fn logout(
    State(s): State<AppState>,
    p: Principal,
    Body(b): Body<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    s.actors
        .stores
        .core
        .send(RevokeRefreshFamily {
            token_hash: token_hash(&b.refresh_token),
        })
        .await?;
    if let Some(id) = p.user_id() {
        s.actors
            .stores
            .core
            .send(pm_actors::store::core::BumpTokenGeneration { id })
            .await?;
        s.generations.forget(id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What `me` answers: the principal, and for a user its record.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Me {
    /// `user` or `api_key`.
    #[schema(value_type = String, pattern = "^(user|api_key)$")]
    r#type: String,
    /// The user's or the key's id.
    id: Uuid,
    /// The username or the key's name.
    name: String,
    permissions: Vec<pm_domain::Permission>,
    /// The user (absent for an API key).
    #[schema(value_type = pm_storage::core::users::User, required = false)]
    user: Option<pm_storage::core::users::User>,
}

#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    operation_id = "me",
    summary = "Who the caller is",
    responses((status = 200, description = "The principal: a user (with its record) or an API key.", body = Me)),
)]
async fn me(State(s): State<AppState>, p: Principal) -> Result<Json<Value>, ApiError> {
    let mut body = serde_json::to_value(&p).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(id) = p.user_id() {
        let user = s.actors.stores.core.send(GetUser { id }).await?;
        body["user"] = json!(user);
    }
    Ok(Json(body))
}
