//! Roles and their permissions.

use chrono::Utc;
use pm_domain::{Permission, BUILTIN_ROLES};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::Core;
use crate::db::BeginLocked;
use crate::{with_conn, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Role {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub builtin: bool,
    pub permissions: Vec<Permission>,
}

fn perms(list: &str) -> Vec<Permission> {
    let mut v: Vec<Permission> = list
        .split(',')
        .filter_map(|p| Permission::parse(p).ok())
        .collect();
    v.sort();
    v
}

impl Core {
    /// Creates the built-in roles that are missing and gives them their permissions. Runs at
    /// every start, so upgrades that add a permission to a built-in role take effect.
    pub async fn ensure_builtin_roles(&self) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            for (name, grants) in BUILTIN_ROLES {
                let existing: Option<Uuid> = sqlx::query_scalar("SELECT id FROM roles WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
                let id = match existing {
                    Some(id) => id,
                    None => {
                        let id = Uuid::now_v7();
                        sqlx::query(
                            "INSERT INTO roles (id, name, description, builtin, created_at) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(id)
                        .bind(name)
                        .bind(format!("built-in {name} role"))
                        .bind(true)
                        .bind(Utc::now())
                        .execute(&mut *tx)
                        .await?;
                        id
                    }
                };
                for p in grants.iter() {
                    sqlx::query(
                        "INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(p.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn list_roles(&self) -> Result<Vec<Role>, StoreError> {
        let sql = "SELECT r.id, r.name, r.description, r.builtin, \
                   COALESCE((SELECT STRING_AGG(permission, ',') FROM role_permissions rp WHERE rp.role_id = r.id), '') AS perms \
                   FROM roles r ORDER BY r.name";
        with_conn!(self.db, |conn| {
            let sql = sql_for_backend(sql, self.db.backend());
            let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
            rows.iter()
                .map(|r| {
                    Ok(Role {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        description: r.try_get("description")?,
                        builtin: r.try_get("builtin")?,
                        permissions: perms(&r.try_get::<String, _>("perms")?),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    pub async fn get_role(&self, id: Uuid) -> Result<Role, StoreError> {
        self.list_roles()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| StoreError::NotFound {
                entity: "role",
                id: id.to_string(),
            })
    }

    /// Creates a custom role.
    pub async fn create_role(
        &self,
        name: &str,
        description: Option<&str>,
        permissions: &[Permission],
    ) -> Result<Role, StoreError> {
        let id = Uuid::now_v7();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            sqlx::query(
                "INSERT INTO roles (id, name, description, builtin, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(name)
            .bind(description)
            .bind(false)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await
            .map_err(|e| unique(e, "role", "name", name))?;
            for p in permissions {
                sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind(p.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        self.get_role(id).await
    }

    /// Replaces a custom role's permissions and description. Built-in roles are fixed.
    pub async fn update_role(
        &self,
        id: Uuid,
        description: Option<Option<&str>>,
        permissions: Option<&[Permission]>,
    ) -> Result<Role, StoreError> {
        let role = self.get_role(id).await?;
        if role.builtin {
            return Err(StoreError::Invalid {
                field: "role",
                reason: "built-in roles cannot be changed".into(),
            });
        }
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            if let Some(d) = description {
                sqlx::query("UPDATE roles SET description = $1 WHERE id = $2")
                    .bind(d)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let admins = super::users::admin_count!(tx);
            if let Some(ps) = permissions {
                sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for p in ps {
                    sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(id)
                        .bind(p.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                super::users::ensure_an_admin!(tx, admins, "permissions");
                // Its users' access tokens carry the old permissions.
                sqlx::query(
                    "UPDATE users SET token_generation = token_generation + 1 \
                     WHERE id IN (SELECT user_id FROM user_roles WHERE role_id = $1)",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        self.get_role(id).await
    }

    pub async fn delete_role(&self, id: Uuid) -> Result<(), StoreError> {
        let role = self.get_role(id).await?;
        if role.builtin {
            return Err(StoreError::Invalid {
                field: "role",
                reason: "built-in roles cannot be deleted".into(),
            });
        }
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            let admins = super::users::admin_count!(tx);
            sqlx::query(
                "UPDATE users SET token_generation = token_generation + 1 \
                 WHERE id IN (SELECT user_id FROM user_roles WHERE role_id = $1)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM roles WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            super::users::ensure_an_admin!(tx, admins, "id");
            tx.commit().await?;
        });
        Ok(())
    }
}

/// `STRING_AGG(x, ',')` is PostgreSQL; SQLite spells it `GROUP_CONCAT(x, ',')`.
pub(crate) fn sql_for_backend(sql: &str, backend: crate::Backend) -> String {
    match backend {
        crate::Backend::Postgres => sql.to_owned(),
        crate::Backend::Sqlite => sql.replace("STRING_AGG(", "GROUP_CONCAT("),
    }
}

/// Maps a unique violation to a conflict on `field`.
pub(crate) fn unique(e: sqlx::Error, entity: &'static str, field: &'static str, value: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
            entity,
            field,
            value: value.to_owned(),
        },
        _ => e.into(),
    }
}
