//! `/api/v1/auth`: login, refresh (rotating), logout, me.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use pm_actors::store::core::{
    FindLogin, GetGrants, GetUser, InsertRefreshToken, RevokeRefreshFamily, RotateRefreshToken, TouchLogin,
};
use pm_storage::core::token_hash;
use pm_storage::core::tokens::RefreshRejected;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{password, tokens, Principal};
use crate::error::ApiError;
use crate::extract::Json as Body;
use crate::AppState;

/// Routes open to anyone: login and refresh.
pub fn public() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
}

/// Routes for authenticated callers.
pub fn private() -> Router<AppState> {
    Router::new()
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/password", post(change_password))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Self-service password change: the current password, then the new one. Every other session
/// of the user ends (refresh tokens revoked, access tokens with them); the answer is a fresh
/// token pair for this one.
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
    s.generations.forget(id);
    if user.username == "admin" {
        crate::routes::access::forget_initial_password(&s);
    }
    Ok(Json(issue(&s, id, None, None).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct TokenPair {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: u64,
}

#[derive(Deserialize)]
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
        s.generations.forget(id);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(s): State<AppState>, p: Principal) -> Result<Json<Value>, ApiError> {
    let mut body = serde_json::to_value(&p).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(id) = p.user_id() {
        let user = s.actors.stores.core.send(GetUser { id }).await?;
        body["user"] = json!(user);
    }
    Ok(Json(body))
}
