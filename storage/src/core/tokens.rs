//! Refresh tokens: stored as hashes, rotated on every use, revocable by family.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::Core;
use crate::db::BeginLocked;
use crate::{with_conn, StoreError};

/// Why a refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRejected {
    Unknown,
    Expired,
    /// Already used by a rotation (it has a successor): possibly stolen, so its whole family
    /// is now revoked.
    Reused,
    /// Revoked without being used: logout, deactivation, a new password.
    Revoked,
}

/// A successful rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub user_id: Uuid,
    pub family_id: Uuid,
}

impl Core {
    /// Stores a new refresh token (its hash) for `user_id`, starting or continuing a family.
    pub async fn insert_refresh_token(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(Uuid::now_v7())
            .bind(user_id)
            .bind(family_id)
            .bind(token_hash)
            .bind(Utc::now())
            .bind(expires_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Spends `old_hash` and stores `new_hash` as its successor, atomically. A token presented
    /// twice revokes its family: the legitimate holder and a thief cannot both go on.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
    ) -> Result<Result<Rotated, RefreshRejected>, StoreError> {
        let now = Utc::now();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            // Spend it first: of two concurrent uses, only one updates the row.
            let spent = sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL \
                 RETURNING user_id, family_id, expires_at",
            )
            .bind(now)
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = spent else {
                let found =
                    sqlx::query("SELECT family_id, created_at FROM refresh_tokens WHERE token_hash = $1")
                        .bind(old_hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(found) = found else {
                    return Ok(Err(RefreshRejected::Unknown));
                };
                let family: Uuid = found.try_get("family_id")?;
                let created: DateTime<Utc> = found.try_get("created_at")?;
                // A rotation leaves a successor in the family; a revocation does not.
                let successors: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1 AND created_at > $2",
                )
                .bind(family)
                .bind(created)
                .fetch_one(&mut *tx)
                .await?;
                if successors == 0 {
                    return Ok(Err(RefreshRejected::Revoked));
                }
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(family)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(Err(RefreshRejected::Reused));
            };
            let user_id: Uuid = row.try_get("user_id")?;
            let family_id: Uuid = row.try_get("family_id")?;
            let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
            if expires_at <= now {
                tx.commit().await?;
                return Ok(Err(RefreshRejected::Expired));
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(Uuid::now_v7())
            .bind(user_id)
            .bind(family_id)
            .bind(new_hash)
            .bind(now)
            .bind(new_expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Ok(Rotated { user_id, family_id }))
        })
    }

    /// Revokes the family of the token (logout). Returns whether the token was known.
    pub async fn revoke_refresh_family(&self, token_hash: &str) -> Result<bool, StoreError> {
        with_conn!(self.db, |conn| {
            let family: Option<Uuid> =
                sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(family) = family else { return Ok(false) };
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
            )
            .bind(Utc::now())
            .bind(family)
            .execute(&mut *conn)
            .await?;
            Ok(true)
        })
    }

    /// Revokes every refresh token of a user (password change, deactivation).
    pub async fn revoke_user_tokens(&self, user_id: Uuid) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(Utc::now())
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }
}
