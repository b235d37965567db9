//! Users, their roles, and what login needs.

use chrono::{DateTime, Utc};
use pm_domain::Permission;
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::roles::{sql_for_backend, unique};
use super::Core;
use crate::catalog::Page;
use crate::db::BeginLocked;
use crate::keyset::{after, fetch_limit, page};
use crate::{with_conn, StoreError};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub is_active: bool,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// An argon2id PHC string; hashing is the caller's (CPU-bound) job.
    pub password_hash: String,
    pub roles: Vec<String>,
}

/// `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub password_hash: Option<String>,
    pub is_active: Option<bool>,
    pub roles: Option<Vec<String>>,
}

/// What login checks.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub id: Uuid,
    pub password_hash: String,
    pub is_active: bool,
}

/// What a user may do right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Grants {
    pub username: String,
    pub is_active: bool,
    pub roles: Vec<String>,
    pub permissions: Vec<Permission>,
    /// Access tokens issued under an older generation are refused.
    pub token_generation: i64,
}

const USER_SELECT: &str = "SELECT u.id, u.username, u.email, u.display_name, u.is_active, u.created_at, \
    u.updated_at, u.last_login_at, COALESCE((SELECT STRING_AGG(r.name, ',') FROM user_roles ur \
    JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = u.id), '') AS role_names FROM users u";

fn user_from_row<R: Row>(r: &R) -> Result<User, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> DateTime<Utc>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<DateTime<Utc>>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let names: String = r.try_get("role_names")?;
    let mut roles: Vec<String> = names
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    roles.sort();
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        is_active: r.try_get("is_active")?,
        roles,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        last_login_at: r.try_get("last_login_at")?,
    })
}

/// Replaces a user's roles inside a transaction; unknown role names are refused.
macro_rules! set_roles {
    ($tx:expr, $user:expr, $roles:expr) => {{
        sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
            .bind($user)
            .execute(&mut *$tx)
            .await?;
        for name in $roles {
            let role: Option<Uuid> = sqlx::query_scalar("SELECT id FROM roles WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *$tx)
                .await?;
            let role = role.ok_or_else(|| StoreError::Invalid {
                field: "roles",
                reason: format!("unknown role {name:?}"),
            })?;
            sqlx::query("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)")
                .bind($user)
                .bind(role)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// Active users with the `admin` permission, inside a write transaction.
macro_rules! admin_count {
    ($tx:expr) => {{
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT u.id) FROM users u \
             JOIN user_roles ur ON ur.user_id = u.id \
             JOIN role_permissions rp ON rp.role_id = ur.role_id \
             WHERE rp.permission = 'admin' AND u.is_active",
        )
        .fetch_one(&mut *$tx)
        .await?;
        n
    }};
}
pub(crate) use admin_count;

/// Refuses (rolling the transaction back) a change that took the last active admin away:
/// nobody could manage users any more. `$before` is [`admin_count!`] before the change.
macro_rules! ensure_an_admin {
    ($tx:expr, $before:expr, $field:expr) => {{
        if $before > 0 && $crate::core::users::admin_count!($tx) == 0 {
            return Err(StoreError::Refused {
                field: $field,
                reason: "this would leave no active admin; make another user admin first".into(),
            });
        }
    }};
}
pub(crate) use ensure_an_admin;

fn not_found(id: Uuid) -> StoreError {
    StoreError::NotFound {
        entity: "user",
        id: id.to_string(),
    }
}

impl Core {
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
                .fetch_one(&mut *conn)
                .await?
        }))
    }

    pub async fn create_user(&self, u: NewUser) -> Result<User, StoreError> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            sqlx::query(
                "INSERT INTO users (id, username, email, display_name, password_hash, is_active, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id)
            .bind(&u.username)
            .bind(&u.email)
            .bind(&u.display_name)
            .bind(&u.password_hash)
            .bind(true)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                // PostgreSQL names the constraint (users_email_key), SQLite the column (users.email).
                sqlx::Error::Database(d)
                    if d.is_unique_violation()
                        && (d.constraint().is_some_and(|c| c.contains("email")) || d.message().contains("users.email")) =>
                {
                    unique(e, "user", "email", u.email.as_deref().unwrap_or_default())
                }
                _ => unique(e, "user", "username", &u.username),
            })?;
            set_roles!(tx, id, &u.roles);
            tx.commit().await?;
        });
        self.get_user(id).await
    }

    pub async fn get_user(&self, id: Uuid) -> Result<User, StoreError> {
        let sql = sql_for_backend(&format!("{USER_SELECT} WHERE u.id = $1"), self.db.backend());
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
            user_from_row(&row.ok_or_else(|| not_found(id))?)
        })
    }

    pub async fn list_users(&self, limit: u32, cursor: Option<&str>) -> Result<Page<User>, StoreError> {
        let after = after(cursor)?;
        let sql = sql_for_backend(
            &format!("{USER_SELECT} WHERE u.id > $1 ORDER BY u.id LIMIT $2"),
            self.db.backend(),
        );
        let items = with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql)
                .bind(after)
                .bind(fetch_limit(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(user_from_row).collect::<Result<Vec<_>, _>>()?
        });
        Ok(page(items, limit, |u| u.id))
    }

    pub async fn update_user(&self, id: Uuid, p: UserPatch) -> Result<User, StoreError> {
        let email = p.email.clone().flatten();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            let admins = admin_count!(tx);
            let done = sqlx::query(
                "UPDATE users SET \
                 email = CASE WHEN $1 THEN $2 ELSE email END, \
                 display_name = CASE WHEN $3 THEN $4 ELSE display_name END, \
                 password_hash = COALESCE($5, password_hash), \
                 is_active = COALESCE($6, is_active), \
                 token_generation = token_generation + CASE WHEN $9 THEN 1 ELSE 0 END, \
                 updated_at = $7 WHERE id = $8",
            )
            .bind(p.email.is_some())
            .bind(&email)
            .bind(p.display_name.is_some())
            .bind(p.display_name.clone().flatten())
            .bind(&p.password_hash)
            .bind(p.is_active)
            .bind(Utc::now())
            .bind(id)
            // Deactivation, new roles or a new password end the current access tokens.
            .bind(p.is_active == Some(false) || p.roles.is_some() || p.password_hash.is_some())
            .execute(&mut *tx)
            .await
            .map_err(|e| unique(e, "user", "email", email.as_deref().unwrap_or_default()))?;
            if done.rows_affected() == 0 {
                return Err(not_found(id));
            }
            if let Some(roles) = &p.roles {
                set_roles!(tx, id, roles);
            }
            if p.is_active == Some(false) || p.roles.is_some() {
                ensure_an_admin!(tx, admins, if p.roles.is_some() { "roles" } else { "is_active" });
            }
            tx.commit().await?;
        });
        self.get_user(id).await
    }

    pub async fn delete_user(&self, id: Uuid) -> Result<(), StoreError> {
        let done = with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            let admins = admin_count!(tx);
            let done = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            ensure_an_admin!(tx, admins, "id");
            tx.commit().await?;
            done
        });
        if done == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    pub async fn find_login(&self, username: &str) -> Result<Option<LoginRecord>, StoreError> {
        with_conn!(self.db, |conn| {
            let row = sqlx::query("SELECT id, password_hash, is_active FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(|r| -> Result<LoginRecord, StoreError> {
                Ok(LoginRecord {
                    id: r.try_get("id")?,
                    password_hash: r.try_get("password_hash")?,
                    is_active: r.try_get("is_active")?,
                })
            })
            .transpose()
        })
    }

    /// The user's roles and the union of their permissions.
    pub async fn grants(&self, id: Uuid) -> Result<Grants, StoreError> {
        let user = self.get_user(id).await?;
        let perms: Vec<String> = with_conn!(self.db, |conn| {
            sqlx::query_scalar(
                "SELECT DISTINCT rp.permission FROM user_roles ur JOIN role_permissions rp ON rp.role_id = ur.role_id \
                 WHERE ur.user_id = $1",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
        });
        let mut permissions: Vec<Permission> =
            perms.iter().filter_map(|p| Permission::parse(p).ok()).collect();
        permissions.sort();
        let token_generation = self.token_generation(id).await?.unwrap_or_default();
        Ok(Grants {
            username: user.username,
            is_active: user.is_active,
            roles: user.roles,
            permissions,
            token_generation,
        })
    }

    /// The user's token generation; `None` if the user does not exist (any more).
    pub async fn token_generation(&self, id: Uuid) -> Result<Option<i64>, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query_scalar::<_, i64>("SELECT token_generation FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }))
    }

    /// Ends every access token of the user now (they were issued under the old generation).
    pub async fn bump_token_generation(&self, id: Uuid) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query("UPDATE users SET token_generation = token_generation + 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    pub async fn touch_login(&self, id: Uuid) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
                .bind(Utc::now())
                .bind(id)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }
}
