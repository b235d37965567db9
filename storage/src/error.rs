//! Errors of the database layer.

/// Why a database operation failed. The edge maps these to HTTP statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// A unique constraint: the value is taken.
    #[error("{field} {value:?} is already used by another {entity}")]
    Conflict {
        entity: &'static str,
        field: &'static str,
        value: String,
    },
    #[error("invalid cursor")]
    BadCursor,
    #[error("database {database} holds the {found} schema, not {database}: check the database settings")]
    WrongDatabase { database: String, found: String },
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration of database {database} failed: {source}")]
    Migrate {
        database: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// Input the database layer refuses (an unknown role, a cycle in a tree, ...): the edge
    /// answers 422 naming the field.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A valid request that the current state forbids (removing the last admin, deleting a
    /// brand products still use): the edge answers 409 naming the field.
    #[error("{reason}")]
    Refused { field: &'static str, reason: String },
    /// A conditional write (If-Match) whose entity changed since the caller read it: the edge
    /// answers 412 with the current version.
    #[error("{entity} {id} was changed meanwhile: it is at version {current}")]
    Stale {
        entity: &'static str,
        id: String,
        current: i64,
    },
}

impl From<sqlx::Error> for StoreError {
    /// Input a backend refuses that the edge let through is still the caller's error, never a
    /// 500: a NUL in a text (PostgreSQL), a number beyond a column's range.
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(d) = &e {
            match d.code().as_deref() {
                Some("22021" | "22P05") => {
                    return StoreError::Invalid {
                        field: "text",
                        reason: "must not contain control characters (found U+0000)".into(),
                    }
                }
                Some("22003") => {
                    return StoreError::Invalid {
                        field: "number",
                        reason: "out of the range the database can store".into(),
                    }
                }
                _ => {}
            }
        }
        StoreError::Database(e)
    }
}

impl StoreError {
    /// A write that lost to a concurrent one (PostgreSQL's deadlock_detected, 40P01, or
    /// serialization_failure, 40001): its transaction rolled back whole and may run again.
    pub fn is_retryable_conflict(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }

    /// Whether the error is the caller's (not found, a conflict, invalid input, a bad cursor)
    /// rather than the store's: a caller's error is not counted as the actor failing.
    pub fn is_callers(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound { .. }
                | StoreError::Conflict { .. }
                | StoreError::BadCursor
                | StoreError::Invalid { .. }
                | StoreError::Refused { .. }
                | StoreError::Stale { .. }
        )
    }

    /// Whether the failure is the database being unreachable or overloaded (worth a retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
        )
    }
}
pub use sqlx::Error as SqlxError;
