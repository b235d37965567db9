//! Scoped API keys for integrations.

use chrono::{DateTime, Utc};
use pm_domain::Permission;
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::Core;
use crate::{with_conn, StoreError};

/// An API key as listed (never the key itself, which is shown once at creation).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Permission>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub key_hash: String,
}

impl ApiKey {
    /// Usable now: not revoked, not expired.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

const COLUMNS: &str =
    "id, name, prefix, key_hash, scopes, created_by, created_at, expires_at, revoked_at, last_used_at";

fn from_row<R: Row>(r: &R) -> Result<ApiKey, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<Uuid>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> DateTime<Utc>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<DateTime<Utc>>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let scopes: String = r.try_get("scopes")?;
    let scopes: Vec<String> =
        serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(ApiKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        key_hash: r.try_get("key_hash")?,
        scopes: scopes.iter().filter_map(|s| Permission::parse(s).ok()).collect(),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

impl Core {
    pub async fn create_api_key(
        &self,
        name: &str,
        prefix: &str,
        key_hash: &str,
        scopes: &[Permission],
        created_by: Option<Uuid>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ApiKey, StoreError> {
        let id = Uuid::now_v7();
        let scopes_json = serde_json::to_string(&scopes.iter().map(|p| p.as_str()).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sql = format!(
            "INSERT INTO api_keys (id, name, prefix, key_hash, scopes, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        );
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(name)
                .bind(prefix)
                .bind(key_hash)
                .bind(scopes_json)
                .bind(created_by)
                .bind(Utc::now())
                .bind(expires_at)
                .fetch_one(&mut *conn)
                .await?;
            from_row(&row)
        })
    }

    pub async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = $1");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(prefix).fetch_optional(&mut *conn).await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY id");
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
            rows.iter().map(from_row).collect()
        })
    }

    pub async fn revoke_api_key(&self, id: Uuid) -> Result<(), StoreError> {
        let done = with_conn!(self.db, |conn| {
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(Utc::now())
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound {
                entity: "api key",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Records use, at most once a minute per key so that every request is not a write.
    pub async fn touch_api_key(&self, id: Uuid) -> Result<(), StoreError> {
        let now = Utc::now();
        with_conn!(self.db, |conn| {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
                .bind(now)
                .bind(id)
                .bind(now - chrono::Duration::seconds(60))
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }
}
