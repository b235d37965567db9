//! Per-user notifications (job finished, import failed, ...).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::Core;
use crate::catalog::Page;
use crate::keyset::{after, fetch_limit, page};
use crate::{with_conn, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl Core {
    pub async fn notify(
        &self,
        user_id: Uuid,
        kind: &str,
        title: &str,
        body: Option<&str>,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO notifications (id, user_id, kind, title, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(user_id)
            .bind(kind)
            .bind(title)
            .bind(body)
            .bind(Utc::now())
            .execute(&mut *conn)
            .await?;
        });
        Ok(id)
    }

    /// A user's notifications, newest first.
    pub async fn list_notifications(
        &self,
        user_id: Uuid,
        unread_only: bool,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Notification>, StoreError> {
        let before = match cursor {
            Some(_) => after(cursor)?,
            None => Uuid::max(),
        };
        let items = with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT id, kind, title, body, created_at, read_at FROM notifications \
                 WHERE user_id = $1 AND id < $2 AND ($3 = FALSE OR read_at IS NULL) ORDER BY id DESC LIMIT $4",
            )
            .bind(user_id)
            .bind(before)
            .bind(unread_only)
            .bind(fetch_limit(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Notification {
                        id: r.try_get("id")?,
                        kind: r.try_get("kind")?,
                        title: r.try_get("title")?,
                        body: r.try_get("body")?,
                        created_at: r.try_get("created_at")?,
                        read_at: r.try_get("read_at")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?
        });
        Ok(page(items, limit, |n| n.id))
    }

    /// Marks one of the user's notifications read; another user's is "not found".
    pub async fn mark_notification_read(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError> {
        let done = with_conn!(self.db, |conn| {
            sqlx::query(
                "UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3",
            )
            .bind(Utc::now())
            .bind(id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound {
                entity: "notification",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    pub async fn mark_all_notifications_read(&self, user_id: Uuid) -> Result<u64, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
                .bind(Utc::now())
                .bind(user_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        }))
    }
}
