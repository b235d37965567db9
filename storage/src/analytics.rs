//! Queries of the analytics database. For now: the activity log of every write.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::db::BeginLocked;
use crate::{with_conn, Db, StoreError};

/// One write, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    /// Username or API key name at the time.
    pub actor_name: String,
    /// e.g. `create`, `update`, `delete`.
    pub action: String,
    /// e.g. `product`, `user`.
    pub entity: String,
    pub entity_id: Option<String>,
    pub request_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// Filters of the activity log.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub user_id: Option<Uuid>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct Analytics {
    db: Db,
}

impl Analytics {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Records a batch of writes in one transaction.
    pub async fn record_activities(&self, batch: &[Activity]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            for a in batch {
                sqlx::query(
                    "INSERT INTO user_activity (id, user_id, api_key_id, actor_name, action, entity, entity_id, request_id, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(a.id)
                .bind(a.user_id)
                .bind(a.api_key_id)
                .bind(&a.actor_name)
                .bind(&a.action)
                .bind(&a.entity)
                .bind(&a.entity_id)
                .bind(&a.request_id)
                .bind(a.at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn record_activity(&self, a: &Activity) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO user_activity (id, user_id, api_key_id, actor_name, action, entity, entity_id, request_id, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(a.id)
            .bind(a.user_id)
            .bind(a.api_key_id)
            .bind(&a.actor_name)
            .bind(&a.action)
            .bind(&a.entity)
            .bind(&a.entity_id)
            .bind(&a.request_id)
            .bind(a.at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The most recent activity, newest first, optionally for one entity.
    /// The activity log, newest first, filtered; keyset pages on the (time-ordered) id.
    pub async fn list_activity(
        &self,
        f: &ActivityFilter,
    ) -> Result<crate::catalog::Page<Activity>, StoreError> {
        let before = match f.cursor.as_deref() {
            Some(c) => Uuid::try_parse(c).map_err(|_| StoreError::BadCursor)?,
            None => Uuid::max(),
        };
        let mut sql = String::from(
            "SELECT id, user_id, api_key_id, actor_name, action, entity, entity_id, request_id, at \
             FROM user_activity WHERE id < $1",
        );
        let mut n = 1;
        let mut add = |clause: &str| {
            n += 1;
            sql.push_str(&format!(" AND {clause} ${n}"));
        };
        if f.user_id.is_some() {
            add("user_id =");
        }
        if f.entity.is_some() {
            add("entity =");
        }
        if f.entity_id.is_some() {
            add("entity_id =");
        }
        if f.since.is_some() {
            add("at >=");
        }
        if f.until.is_some() {
            add("at <");
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", i64::from(f.limit) + 1));
        let items = with_conn!(self.db, |conn| {
            let mut q = sqlx::query(&sql).bind(before);
            if let Some(u) = f.user_id {
                q = q.bind(u);
            }
            if let Some(e) = &f.entity {
                q = q.bind(e);
            }
            if let Some(e) = &f.entity_id {
                q = q.bind(e);
            }
            if let Some(t) = f.since {
                q = q.bind(t);
            }
            if let Some(t) = f.until {
                q = q.bind(t);
            }
            let rows = q.fetch_all(&mut *conn).await?;
            rows.iter()
                .map(|r| {
                    Ok::<_, StoreError>(Activity {
                        id: r.try_get("id")?,
                        user_id: r.try_get("user_id")?,
                        api_key_id: r.try_get("api_key_id")?,
                        actor_name: r.try_get("actor_name")?,
                        action: r.try_get("action")?,
                        entity: r.try_get("entity")?,
                        entity_id: r.try_get("entity_id")?,
                        request_id: r.try_get("request_id")?,
                        at: r.try_get("at")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(crate::keyset::page(items, f.limit, |a| a.id))
    }

    pub async fn recent_activity(
        &self,
        entity_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Activity>, StoreError> {
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT id, user_id, api_key_id, actor_name, action, entity, entity_id, request_id, at FROM user_activity \
                 WHERE ($1 IS NULL OR entity_id = $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(entity_id)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Activity {
                        id: r.try_get("id")?,
                        user_id: r.try_get("user_id")?,
                        api_key_id: r.try_get("api_key_id")?,
                        actor_name: r.try_get("actor_name")?,
                        action: r.try_get("action")?,
                        entity: r.try_get("entity")?,
                        entity_id: r.try_get("entity_id")?,
                        request_id: r.try_get("request_id")?,
                        at: r.try_get("at")?,
                    })
                })
                .collect()
        })
    }
}
