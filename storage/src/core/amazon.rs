//! Amazon SP-API seller accounts (`amazon_api_configs`). Secrets arrive and leave this module
//! encrypted ([`crate::crypto`]); the plain values exist only in the resolver that uses them.

use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::Core;
use crate::{with_conn, StoreError};

/// An account as listed: never its secrets.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AmazonAccount {
    pub id: Uuid,
    pub name: String,
    pub client_id: String,
    pub marketplace_id: String,
    pub endpoint: Option<String>,
    pub lwa_endpoint: Option<String>,
    pub rate_per_sec: Option<f64>,
    pub burst: Option<i32>,
    pub is_default: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An account with its encrypted secrets, for the resolver.
#[derive(Debug, Clone, PartialEq)]
pub struct AmazonAccountSecrets {
    pub account: AmazonAccount,
    pub client_secret_enc: String,
    pub refresh_token_enc: String,
}

/// A new account, its secrets already encrypted.
#[derive(Debug, Clone)]
pub struct NewAmazonAccount {
    pub name: String,
    pub client_id: String,
    pub client_secret_enc: String,
    pub refresh_token_enc: String,
    pub marketplace_id: String,
    pub endpoint: Option<String>,
    pub lwa_endpoint: Option<String>,
    pub rate_per_sec: Option<f64>,
    pub burst: Option<i32>,
    pub is_default: bool,
    pub created_by: Option<Uuid>,
}

const COLUMNS: &str = "id, name, client_id, client_secret_enc, refresh_token_enc, marketplace_id, endpoint, \
                       lwa_endpoint, rate_per_sec, burst, is_default, created_at, updated_at";

macro_rules! account_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<_, StoreError>(AmazonAccountSecrets {
            account: AmazonAccount {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                client_id: r.try_get("client_id")?,
                marketplace_id: r.try_get("marketplace_id")?,
                endpoint: r.try_get("endpoint")?,
                lwa_endpoint: r.try_get("lwa_endpoint")?,
                rate_per_sec: r.try_get("rate_per_sec")?,
                burst: r.try_get("burst")?,
                is_default: r.try_get("is_default")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            },
            client_secret_enc: r.try_get("client_secret_enc")?,
            refresh_token_enc: r.try_get("refresh_token_enc")?,
        })
    }};
}

impl Core {
    /// Adds an account; a new default account takes the place of the previous one.
    pub async fn create_amazon_account(&self, n: &NewAmazonAccount) -> Result<AmazonAccount, StoreError> {
        let id = Uuid::now_v7();
        let now = chrono::Utc::now().timestamp_millis();
        with_conn!(self.db, |conn| {
            let mut tx = crate::db::BeginLocked::begin_write(&mut conn).await?;
            if n.is_default {
                sqlx::query("UPDATE amazon_api_configs SET is_default = FALSE WHERE is_default")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO amazon_api_configs (id, name, client_id, client_secret_enc, refresh_token_enc, \
                 marketplace_id, endpoint, lwa_endpoint, rate_per_sec, burst, is_default, created_by, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
            )
            .bind(id)
            .bind(&n.name)
            .bind(&n.client_id)
            .bind(&n.client_secret_enc)
            .bind(&n.refresh_token_enc)
            .bind(&n.marketplace_id)
            .bind(n.endpoint.as_deref())
            .bind(n.lwa_endpoint.as_deref())
            .bind(n.rate_per_sec)
            .bind(n.burst)
            .bind(n.is_default)
            .bind(n.created_by)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
                    entity: "amazon account",
                    field: "name",
                    value: n.name.clone(),
                },
                e => StoreError::from(e),
            })?;
            tx.commit().await?;
        });
        Ok(self
            .amazon_account(id)
            .await?
            .ok_or_else(|| not_found(id))?
            .account)
    }

    /// Every account, oldest first.
    pub async fn amazon_accounts(&self) -> Result<Vec<AmazonAccount>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM amazon_api_configs ORDER BY id");
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
            rows.iter()
                .map(|r| account_row!(r).map(|a| a.account))
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// One account with its encrypted secrets.
    pub async fn amazon_account(&self, id: Uuid) -> Result<Option<AmazonAccountSecrets>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM amazon_api_configs WHERE id = $1");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
            row.as_ref().map(|r| account_row!(r)).transpose()
        })
    }

    /// The account marked default, if any.
    pub async fn default_amazon_account(&self) -> Result<Option<AmazonAccountSecrets>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM amazon_api_configs WHERE is_default ORDER BY id LIMIT 1");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).fetch_optional(&mut *conn).await?;
            row.as_ref().map(|r| account_row!(r)).transpose()
        })
    }

    pub async fn delete_amazon_account(&self, id: Uuid) -> Result<(), StoreError> {
        let n = with_conn!(self.db, |conn| {
            sqlx::query("DELETE FROM amazon_api_configs WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }
}

fn not_found(id: Uuid) -> StoreError {
    StoreError::NotFound {
        entity: "amazon account",
        id: id.to_string(),
    }
}
