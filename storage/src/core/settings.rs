//! Application settings changed at run time by admins (key → JSON value).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::Core;
use crate::{with_conn, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AppSetting {
    pub key: String,
    pub value: serde_json::Value,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<Uuid>,
}

impl Core {
    pub async fn list_settings(&self) -> Result<Vec<AppSetting>, StoreError> {
        with_conn!(self.db, |conn| {
            let rows =
                sqlx::query("SELECT key, value, updated_at, updated_by FROM app_settings ORDER BY key")
                    .fetch_all(&mut *conn)
                    .await?;
            rows.iter()
                .map(|r| {
                    Ok(AppSetting {
                        key: r.try_get("key")?,
                        value: r.try_get("value")?,
                        updated_at: r.try_get("updated_at")?,
                        updated_by: r.try_get("updated_by")?,
                    })
                })
                .collect()
        })
    }

    pub async fn put_setting(
        &self,
        key: &str,
        value: &serde_json::Value,
        by: Option<Uuid>,
    ) -> Result<AppSetting, StoreError> {
        let now = Utc::now();
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO app_settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
                 updated_by = excluded.updated_by",
            )
            .bind(key)
            .bind(value)
            .bind(now)
            .bind(by)
            .execute(&mut *conn)
            .await?;
        });
        Ok(AppSetting {
            key: key.to_owned(),
            value: value.clone(),
            updated_at: now,
            updated_by: by,
        })
    }

    pub async fn delete_setting(&self, key: &str) -> Result<(), StoreError> {
        let done = with_conn!(self.db, |conn| {
            sqlx::query("DELETE FROM app_settings WHERE key = $1")
                .bind(key)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound {
                entity: "setting",
                id: key.to_owned(),
            });
        }
        Ok(())
    }
}
