//! The imports database beyond its job queue: the rows an import rejected.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use crate::catalog::Page;
use crate::db::{BeginLocked, Db};
use crate::{keyset, with_conn, StoreError};

/// One rejected row, as stored and listed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportError {
    pub id: Uuid,
    pub job_id: Uuid,
    /// The physical line of a text file, or the row of a sheet; 1-based, the header counted.
    pub line: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    /// Stable reason: `bad_gtin`, `digits_lost`, `missing_title`, `missing_key`, `bad_number`,
    /// `bad_currency`, `bad_text`, `cell_too_large`, or the catalog's refusal (`refused`).
    pub code: String,
    pub message: String,
    /// The row's cells as they were in the file.
    pub raw: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A rejected row to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImportError {
    pub line: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub code: String,
    pub message: String,
    pub raw: Vec<String>,
}

/// Queries of the imports database.
#[derive(Clone)]
pub struct Imports {
    db: Db,
}

impl Imports {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records rejected rows of `job_id`, in order, in one transaction.
    pub async fn add_errors(&self, job_id: Uuid, errors: &[NewImportError]) -> Result<(), StoreError> {
        if errors.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            for e in errors {
                sqlx::query(
                    "INSERT INTO import_errors (id, job_id, line, column_name, value, code, message, raw, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(Uuid::now_v7())
                .bind(job_id)
                .bind(e.line)
                .bind(e.column.as_deref())
                .bind(e.value.as_deref())
                .bind(&e.code)
                .bind(&e.message)
                .bind(Json(&e.raw))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Forgets the rejects of `job_id`: a run that starts again records them afresh.
    pub async fn clear_errors(&self, job_id: Uuid) -> Result<u64, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query("DELETE FROM import_errors WHERE job_id = $1")
                .bind(job_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        }))
    }

    /// The rejects of `job_id` in file order, `limit` at a time after `cursor`.
    pub async fn errors(
        &self,
        job_id: Uuid,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<ImportError>, StoreError> {
        let after = keyset::after(cursor)?;
        let rows = with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT id, job_id, line, column_name, value, code, message, raw, created_at FROM import_errors \
                 WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(job_id)
            .bind(after)
            .bind(keyset::fetch_limit(limit))
            .fetch_all(&mut *conn)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let Json(raw): Json<Vec<String>> = r.try_get("raw")?;
                out.push(ImportError {
                    id: r.try_get("id")?,
                    job_id: r.try_get("job_id")?,
                    line: r.try_get("line")?,
                    column: r.try_get("column_name")?,
                    value: r.try_get("value")?,
                    code: r.try_get("code")?,
                    message: r.try_get("message")?,
                    raw,
                    created_at: r.try_get("created_at")?,
                });
            }
            out
        });
        Ok(keyset::page(rows, limit, |e| e.id))
    }
}

#[cfg(test)]
mod tests {
    use pm_config::Database;

    use super::*;
    use crate::testing::backends;
    use crate::Databases;

    fn err(line: i64, code: &str) -> NewImportError {
        NewImportError {
            line,
            column: Some("EAN".into()),
            value: Some("123".into()),
            code: code.into(),
            message: format!("line {line}"),
            raw: vec!["123".into(), "Stylo".into()],
        }
    }

    #[tokio::test]
    async fn rejects_are_kept_in_file_order_paged_and_cleared_for_a_rerun() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            let imports = Imports::new(dbs.get(Database::Imports).clone());
            let (job, other) = (Uuid::now_v7(), Uuid::now_v7());
            imports
                .add_errors(
                    job,
                    &[err(4, "bad_gtin"), err(9, "missing_title"), err(12, "bad_number")],
                )
                .await
                .unwrap();
            imports.add_errors(other, &[err(2, "bad_gtin")]).await.unwrap();
            imports.add_errors(job, &[]).await.unwrap();
            let first = imports.errors(job, 2, None).await.unwrap();
            let lines: Vec<i64> = first.items.iter().map(|e| e.line).collect();
            assert_eq!(lines, [4, 9], "{}", env.label);
            assert_eq!(first.items[0].raw, ["123", "Stylo"]);
            assert_eq!(first.items[0].column.as_deref(), Some("EAN"));
            let rest = imports
                .errors(job, 2, first.next_cursor.as_deref())
                .await
                .unwrap();
            assert_eq!(
                (rest.items.len(), rest.items[0].code.as_str(), rest.next_cursor),
                (1, "bad_number", None)
            );
            assert!(matches!(
                imports.errors(job, 2, Some("nope")).await,
                Err(StoreError::BadCursor)
            ));
            assert_eq!(imports.clear_errors(job).await.unwrap(), 3);
            assert!(imports.errors(job, 10, None).await.unwrap().items.is_empty());
            assert_eq!(imports.errors(other, 10, None).await.unwrap().items.len(), 1);
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
