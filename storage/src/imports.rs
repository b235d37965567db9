//! The imports database beyond its job queue: the rows an import rejected, suppliers' mapping
//! templates, daily statistics, and the record of rollbacks.

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

/// A supplier's mapping template as stored: the template itself is JSON that `pm-imports`
/// reads (`pm_imports::template::Template`); storage keeps it opaque.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MappingTemplate {
    pub id: Uuid,
    pub supplier_id: Uuid,
    pub name: String,
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One day of a supplier's imports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportStatistics {
    pub supplier_id: Uuid,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub jobs: i64,
    pub failed_jobs: i64,
    pub rows_read: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    pub duration_ms: i64,
}

/// A rollback as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportRollback {
    pub job_id: Uuid,
    pub rolled_back_by: Option<Uuid>,
    pub rolled_back_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

const TEMPLATE_COLUMNS: &str =
    "id, supplier_id, name, CAST(template AS TEXT) AS template, created_by, created_at, updated_at";

fn template_from_row<R: Row>(r: &R) -> Result<MappingTemplate, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<Uuid>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> DateTime<Utc>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let text: String = r.try_get("template")?;
    Ok(MappingTemplate {
        id: r.try_get("id")?,
        supplier_id: r.try_get("supplier_id")?,
        name: r.try_get("name")?,
        template: serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn template_not_found(id: Uuid) -> StoreError {
    StoreError::NotFound {
        entity: "mapping template",
        id: id.to_string(),
    }
}

fn template_name(name: &str) -> Result<String, StoreError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            field: "name",
            reason: "a template name is 1 to 200 visible characters".into(),
        });
    }
    Ok(n.to_owned())
}

impl Imports {
    /// Saves a template under a name for a supplier; the same name again replaces it.
    pub async fn save_template(
        &self,
        supplier_id: Uuid,
        name: &str,
        template: &serde_json::Value,
        by: Option<Uuid>,
    ) -> Result<MappingTemplate, StoreError> {
        let name = template_name(name)?;
        let now = crate::catalog::now_micros();
        let cast = match self.db.backend() {
            crate::Backend::Postgres => "CAST($4 AS JSONB)",
            crate::Backend::Sqlite => "$4",
        };
        let sql = format!(
            "INSERT INTO mapping_templates (id, supplier_id, name, template, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, {cast}, $5, $6, $6) ON CONFLICT (supplier_id, name) DO UPDATE SET \
             template = excluded.template, updated_at = excluded.updated_at RETURNING {TEMPLATE_COLUMNS}"
        );
        let text = template.to_string();
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql)
                .bind(Uuid::now_v7())
                .bind(supplier_id)
                .bind(&name)
                .bind(&text)
                .bind(by)
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
            template_from_row(&row)
        })
    }

    pub async fn template(&self, id: Uuid) -> Result<MappingTemplate, StoreError> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM mapping_templates WHERE id = $1");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
            template_from_row(&row.ok_or_else(|| template_not_found(id))?)
        })
    }

    /// A supplier's templates by name (a supplier has a handful, so no pages).
    pub async fn templates(&self, supplier_id: Uuid) -> Result<Vec<MappingTemplate>, StoreError> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM mapping_templates WHERE supplier_id = $1 ORDER BY name LIMIT 1000");
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql).bind(supplier_id).fetch_all(&mut *conn).await?;
            rows.iter().map(template_from_row).collect()
        })
    }

    pub async fn delete_template(&self, id: Uuid) -> Result<(), StoreError> {
        let n = with_conn!(self.db, |conn| {
            sqlx::query("DELETE FROM mapping_templates WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(template_not_found(id));
        }
        Ok(())
    }

    /// Adds a finished job to its supplier's day.
    pub async fn add_statistics(&self, s: &ImportStatistics) -> Result<(), StoreError> {
        let date = match self.db.backend() {
            crate::Backend::Postgres => "CAST($2 AS DATE)",
            crate::Backend::Sqlite => "$2",
        };
        let sql = format!(
            "INSERT INTO import_statistics (supplier_id, day, jobs, failed_jobs, rows_read, created, updated, unchanged, \
             rejected, duration_ms) VALUES ($1, {date}, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (supplier_id, day) DO UPDATE SET jobs = import_statistics.jobs + excluded.jobs, \
             failed_jobs = import_statistics.failed_jobs + excluded.failed_jobs, \
             rows_read = import_statistics.rows_read + excluded.rows_read, \
             created = import_statistics.created + excluded.created, \
             updated = import_statistics.updated + excluded.updated, \
             unchanged = import_statistics.unchanged + excluded.unchanged, \
             rejected = import_statistics.rejected + excluded.rejected, \
             duration_ms = import_statistics.duration_ms + excluded.duration_ms"
        );
        with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(s.supplier_id)
                .bind(&s.day)
                .bind(s.jobs)
                .bind(s.failed_jobs)
                .bind(s.rows_read)
                .bind(s.created)
                .bind(s.updated)
                .bind(s.unchanged)
                .bind(s.rejected)
                .bind(s.duration_ms)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// A supplier's days, newest first (at most `days`).
    pub async fn statistics(
        &self,
        supplier_id: Uuid,
        days: u32,
    ) -> Result<Vec<ImportStatistics>, StoreError> {
        let sql =
            "SELECT supplier_id, CAST(day AS TEXT) AS day, jobs, failed_jobs, rows_read, created, updated, \
                   unchanged, rejected, duration_ms FROM import_statistics WHERE supplier_id = $1 \
                   ORDER BY day DESC LIMIT $2";
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(sql)
                .bind(supplier_id)
                .bind(i64::from(days.min(3660)))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(ImportStatistics {
                        supplier_id: r.try_get("supplier_id")?,
                        day: r.try_get("day")?,
                        jobs: r.try_get("jobs")?,
                        failed_jobs: r.try_get("failed_jobs")?,
                        rows_read: r.try_get("rows_read")?,
                        created: r.try_get("created")?,
                        updated: r.try_get("updated")?,
                        unchanged: r.try_get("unchanged")?,
                        rejected: r.try_get("rejected")?,
                        duration_ms: r.try_get("duration_ms")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// Records that a job was rolled back; `false` when it already was.
    pub async fn record_rollback(
        &self,
        job_id: Uuid,
        by: Option<Uuid>,
        report: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let cast = match self.db.backend() {
            crate::Backend::Postgres => "CAST($4 AS JSONB)",
            crate::Backend::Sqlite => "$4",
        };
        let sql = format!(
            "INSERT INTO import_rollbacks (job_id, rolled_back_by, rolled_back_at, report) VALUES ($1, $2, $3, {cast}) \
             ON CONFLICT (job_id) DO NOTHING"
        );
        let now = crate::catalog::now_micros();
        let text = report.to_string();
        let n = with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(job_id)
                .bind(by)
                .bind(now)
                .bind(&text)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn rollback_of(&self, job_id: Uuid) -> Result<Option<ImportRollback>, StoreError> {
        with_conn!(self.db, |conn| {
            let row = sqlx::query(
                "SELECT job_id, rolled_back_by, rolled_back_at, CAST(report AS TEXT) AS report \
                 FROM import_rollbacks WHERE job_id = $1",
            )
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let report: String = r.try_get("report")?;
                    Ok(Some(ImportRollback {
                        job_id: r.try_get("job_id")?,
                        rolled_back_by: r.try_get("rolled_back_by")?,
                        rolled_back_at: r.try_get("rolled_back_at")?,
                        report: serde_json::from_str(&report)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    }))
                }
            }
        })
    }
}

/// One line of an import's log.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportLog {
    pub at: DateTime<Utc>,
    /// `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// An import's file as recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportFile {
    pub job_id: Uuid,
    pub supplier_id: Uuid,
    pub bucket: String,
    pub key: String,
    pub name: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub source_url: Option<String>,
    pub format: Option<String>,
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    pub sheet: Option<String>,
    pub header_line: Option<i64>,
    pub profile: Option<String>,
}

/// Lines a job's log keeps at most (a job that logs more keeps its first ones and the last).
pub const MAX_LOG_LINES: i64 = 10_000;

impl Imports {
    /// On PostgreSQL, the log partitions of the month of `now` and the next (idempotent); a
    /// month whose rows already went to the default partition keeps them there (warned).
    pub async fn ensure_log_partitions(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let crate::Pool::Postgres(pool) = &self.db.pool else {
            return Ok(());
        };
        use chrono::Datelike;
        let first = |y: i32, m: u32| chrono::NaiveDate::from_ymd_opt(y, m, 1);
        let next = |y: i32, m: u32| if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let (mut y, mut m) = (now.year(), now.month());
        let mut conn = self.db.acquire(pool).await?;
        for _ in 0..2 {
            let (ny, nm) = next(y, m);
            let (Some(from), Some(to)) = (first(y, m), first(ny, nm)) else {
                break;
            };
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS import_logs_{y:04}_{m:02} PARTITION OF import_logs \
                 FOR VALUES FROM ('{from}') TO ('{to}')"
            );
            if let Err(e) = sqlx::query(&sql).execute(&mut *conn).await {
                tracing::warn!(error = %e, month = %from, "import log partition not created; rows go to the default partition");
            }
            (y, m) = (ny, nm);
        }
        Ok(())
    }

    /// Appends a line to a job's log.
    pub async fn log(
        &self,
        job_id: Uuid,
        level: &str,
        message: &str,
        details: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let cast = match self.db.backend() {
            crate::Backend::Postgres => "CAST($6 AS JSONB)",
            crate::Backend::Sqlite => "$6",
        };
        let sql = format!(
            "INSERT INTO import_logs (id, job_id, at, level, message, details) VALUES ($1, $2, $3, $4, $5, {cast})"
        );
        let message: String = message.chars().take(4000).collect();
        let details = details.map(|d| d.to_string());
        with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(Uuid::now_v7())
                .bind(job_id)
                .bind(crate::catalog::now_micros())
                .bind(level)
                .bind(&message)
                .bind(&details)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// A job's log, oldest first, at most `limit` lines.
    pub async fn logs(&self, job_id: Uuid, limit: u32) -> Result<Vec<ImportLog>, StoreError> {
        let limit = i64::from(limit).clamp(1, MAX_LOG_LINES);
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT at, level, message, CAST(details AS TEXT) AS details FROM import_logs \
                 WHERE job_id = $1 ORDER BY at, id LIMIT $2",
            )
            .bind(job_id)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    let details: Option<String> = r.try_get("details")?;
                    Ok(ImportLog {
                        at: r.try_get("at")?,
                        level: r.try_get("level")?,
                        message: r.try_get("message")?,
                        details: details.and_then(|d| serde_json::from_str(&d).ok()),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// Records (or, on a rerun, replaces) a job's file.
    pub async fn record_file(&self, f: &ImportFile) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO import_files (job_id, supplier_id, bucket, key, name, size, sha256, source_url, format, \
                 encoding, delimiter, sheet, header_line, profile, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (job_id) DO UPDATE SET bucket = excluded.bucket, key = excluded.key, \
                 size = excluded.size, sha256 = excluded.sha256, format = excluded.format, \
                 encoding = excluded.encoding, delimiter = excluded.delimiter, sheet = excluded.sheet, \
                 header_line = excluded.header_line, profile = excluded.profile",
            )
            .bind(f.job_id)
            .bind(f.supplier_id)
            .bind(&f.bucket)
            .bind(&f.key)
            .bind(&f.name)
            .bind(f.size)
            .bind(&f.sha256)
            .bind(&f.source_url)
            .bind(&f.format)
            .bind(&f.encoding)
            .bind(&f.delimiter)
            .bind(&f.sheet)
            .bind(f.header_line)
            .bind(&f.profile)
            .bind(crate::catalog::now_micros())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    pub async fn file(&self, job_id: Uuid) -> Result<Option<ImportFile>, StoreError> {
        with_conn!(self.db, |conn| {
            let row = sqlx::query(
                "SELECT job_id, supplier_id, bucket, key, name, size, sha256, source_url, format, encoding, \
                 delimiter, sheet, header_line, profile FROM import_files WHERE job_id = $1",
            )
            .bind(job_id)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some(ImportFile {
                    job_id: r.try_get("job_id")?,
                    supplier_id: r.try_get("supplier_id")?,
                    bucket: r.try_get("bucket")?,
                    key: r.try_get("key")?,
                    name: r.try_get("name")?,
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                    source_url: r.try_get("source_url")?,
                    format: r.try_get("format")?,
                    encoding: r.try_get("encoding")?,
                    delimiter: r.try_get("delimiter")?,
                    sheet: r.try_get("sheet")?,
                    header_line: r.try_get("header_line")?,
                    profile: r.try_get("profile")?,
                })),
            }
        })
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
