//! The caller of a request, resolved once by [`authenticate`].

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use pm_actors::store::core::{ApiKeyByPrefix, TouchApiKey};
use pm_domain::Permission;
use pm_storage::core::token_hash;
use serde::Serialize;
use uuid::Uuid;

use super::tokens::{api_key_prefix, constant_time_eq};
use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PrincipalKind {
    User { id: Uuid },
    ApiKey { id: Uuid },
}

/// Who is calling and what they may do.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    #[serde(flatten)]
    pub kind: PrincipalKind,
    pub name: String,
    pub permissions: Vec<Permission>,
    #[serde(skip)]
    pub request_id: Option<String>,
}

impl Principal {
    pub fn user_id(&self) -> Option<Uuid> {
        match self.kind {
            PrincipalKind::User { id } => Some(id),
            PrincipalKind::ApiKey { .. } => None,
        }
    }

    pub fn api_key_id(&self) -> Option<Uuid> {
        match self.kind {
            PrincipalKind::ApiKey { id } => Some(id),
            PrincipalKind::User { .. } => None,
        }
    }

    /// Who this is, as a write's origin (activity log).
    pub fn origin(&self) -> pm_actors::changes::Origin {
        pm_actors::changes::Origin {
            user_id: self.user_id(),
            api_key_id: self.api_key_id(),
            name: self.name.clone(),
            request_id: self.request_id.clone(),
        }
    }

    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    /// 403 unless the principal holds `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.can(p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this needs the {p} permission")))
        }
    }

    /// The user behind the request; API keys have none.
    pub fn require_user(&self) -> Result<Uuid, ApiError> {
        self.user_id()
            .ok_or_else(|| ApiError::Forbidden("this is for users, not api keys".into()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("authentication required".into()))
    }
}

/// Resolves `Authorization: Bearer <jwt | api key>` into a [`Principal`], or answers 401.
/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive
/// (RFC 7235), so `BEARER` and `bearer` work too.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?.trim_start();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub async fn authenticate(
    State(s): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer(req.headers()).ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    let (mut principal, _) = resolve(&s, token).await?;
    principal.request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// The principal a bearer token (access token or API key) stands for, and when it stops being
/// valid (seconds since the epoch; `None`: until revoked). API keys come from the key cache.
pub async fn resolve(s: &AppState, token: &str) -> Result<(Principal, Option<u64>), ApiError> {
    let principal = match api_key_prefix(token) {
        Some(prefix) => {
            let key = match s.api_keys.get(prefix).await {
                Some(cached) => cached,
                None => {
                    let found = s
                        .actors
                        .stores
                        .core
                        .send(ApiKeyByPrefix {
                            prefix: prefix.to_owned(),
                        })
                        .await?;
                    s.api_keys.insert(prefix.to_owned(), found.clone()).await;
                    found
                }
            };
            let key = key
                .filter(|k| constant_time_eq(&k.key_hash, &token_hash(token)))
                .ok_or_else(|| ApiError::Unauthorized("invalid api key".into()))?;
            if !key.is_live(chrono::Utc::now()) {
                return Err(ApiError::Unauthorized("api key revoked or expired".into()));
            }
            if s.api_keys.touch_due(key.id).await {
                let core = s.actors.stores.core.clone();
                // Best effort, once a minute per key; a request never waits for it.
                tokio::spawn(async move {
                    let _ = core.try_send(TouchApiKey { id: key.id }).await;
                });
            }
            let expires = key.expires_at.map(|t| t.timestamp().max(0) as u64);
            (
                Principal {
                    kind: PrincipalKind::ApiKey { id: key.id },
                    name: key.name,
                    permissions: key.scopes,
                    request_id: None,
                },
                expires,
            )
        }
        None => {
            let claims = s
                .keys
                .verify(token)
                .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
            let core = s.actors.stores.core.clone();
            let current = s
                .generations
                .get(claims.sub, async move {
                    core.send(pm_actors::store::core::TokenGeneration { id: claims.sub })
                        .await
                })
                .await?;
            match current {
                None => return Err(ApiError::Unauthorized("the user no longer exists".into())),
                Some(g) if claims.tgen < g => {
                    return Err(ApiError::Unauthorized(
                        "token revoked (logout, deactivation or a change of roles); log in again".into(),
                    ))
                }
                Some(_) => {}
            }
            (
                Principal {
                    kind: PrincipalKind::User { id: claims.sub },
                    name: claims.name,
                    permissions: claims.perms,
                    request_id: None,
                },
                Some(claims.exp),
            )
        }
    };
    Ok(principal)
}

/// `catalog:read` for reads (GET, HEAD), `catalog:write` for the rest, checked before the body
/// is parsed: a caller without the permission learns nothing about the body's schema.
pub async fn require_catalog(principal: Principal, req: Request, next: Next) -> Result<Response, ApiError> {
    let needed = if matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        Permission::CatalogRead
    } else {
        Permission::CatalogWrite
    };
    principal.require(needed)?;
    Ok(next.run(req).await)
}

/// 403 unless the caller is an admin. Runs after [`authenticate`].
pub async fn require_admin(principal: Principal, req: Request, next: Next) -> Result<Response, ApiError> {
    principal.require(Permission::Admin)?;
    Ok(next.run(req).await)
}
