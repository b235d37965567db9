//! The media database beyond its job queue: products' original images (`media_files`), their
//! thumbnails, what probing found (`media_metadata`) and products' QR codes.
//!
//! A product's images are ordered by `position` (0, 1, 2, ... without gaps, kept so by every
//! write) and exactly one of them is the main one while it has any. Writes that read-check-write
//! run in one write transaction (`BEGIN IMMEDIATE` on SQLite; on PostgreSQL a transaction-scoped
//! advisory lock per product), so two uploads for one product cannot take the same position or
//! pass the per-product limit together.

use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::db::{BeginLocked, Db};
use crate::{with_conn, StoreError};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Where an original stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaStatus {
    /// Waiting for its thumbnail job.
    Queued,
    Processing,
    /// Thumbnails and metadata are there.
    Done,
    /// The image could not be read (see `error`).
    Failed,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaStatus::Queued => "queued",
            MediaStatus::Processing => "processing",
            MediaStatus::Done => "done",
            MediaStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => MediaStatus::Queued,
            "processing" => MediaStatus::Processing,
            "done" => MediaStatus::Done,
            "failed" => MediaStatus::Failed,
            _ => return None,
        })
    }
}

/// One original image of a product.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MediaFile {
    pub id: Uuid,
    pub product_id: Uuid,
    /// Hex SHA-256 of the original's bytes.
    pub sha256: String,
    /// From the sniffed format: `jpg`, `png`, `webp`, `gif` or `tiff`.
    pub ext: String,
    pub content_type: String,
    pub size: i64,
    /// Order among the product's images, from 0.
    pub position: i64,
    pub is_main: bool,
    pub source_url: Option<String>,
    pub status: MediaStatus,
    /// Why processing failed.
    pub error: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored thumbnail.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MediaThumbnail {
    /// `small`, `medium` or `large`.
    pub size: String,
    pub key: String,
    pub width: i64,
    pub height: i64,
    pub bytes: i64,
    pub content_type: String,
}

/// What probing the original found.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MediaMetadata {
    pub format: String,
    /// As displayed (after the EXIF orientation).
    pub width: i64,
    pub height: i64,
    pub color_type: String,
    /// The EXIF fields kept (camera, dates, orientation, ...): never GPS nor personal fields.
    #[schema(value_type = Option<Object>)]
    pub exif: Option<serde_json::Value>,
}

/// A product's stored QR code.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProductQrCode {
    pub product_id: Uuid,
    /// The text encoded.
    pub target: String,
    pub png_key: String,
    pub svg_key: String,
    pub created_at: i64,
}

/// A product's main image as product answers show it: the image, its displayed size (once
/// probed) and its thumbnails' keys.
#[derive(Debug, Clone, PartialEq)]
pub struct MainImage {
    pub id: Uuid,
    pub product_id: Uuid,
    pub sha256: String,
    pub ext: String,
    pub status: MediaStatus,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// `(size, key)`, smallest first.
    pub thumbnails: Vec<(String, String)>,
}

/// A new original, to record.
#[derive(Debug, Clone)]
pub struct NewMediaFile {
    pub product_id: Uuid,
    pub sha256: String,
    pub ext: String,
    pub content_type: String,
    pub size: i64,
    pub source_url: Option<String>,
}

/// What [`Media::add`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub file: MediaFile,
    /// False: the product already had these bytes; `file` is that image.
    pub created: bool,
}

/// The media database's queries.
#[derive(Clone)]
pub struct Media {
    db: Db,
}

const FILE_COLUMNS: &str = "id, product_id, sha256, ext, content_type, size, position, is_main, \
    source_url, status, error, created_at, updated_at";

fn file_from_row<R>(r: &R) -> Result<MediaFile, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> Uuid: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = r.try_get("status")?;
    Ok(MediaFile {
        id: r.try_get("id")?,
        product_id: r.try_get("product_id")?,
        sha256: r.try_get("sha256")?,
        ext: r.try_get("ext")?,
        content_type: r.try_get("content_type")?,
        size: r.try_get("size")?,
        position: r.try_get::<i64, _>("position")?,
        is_main: r.try_get("is_main")?,
        source_url: r.try_get("source_url")?,
        status: MediaStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("media status {status:?}")))?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A row of [`Media::main_images`].
type MainRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    Option<i32>,
    Option<i32>,
    Option<String>,
    Option<String>,
);

/// Takes the product's lock inside a PostgreSQL transaction (SQLite's write transaction is
/// the lock already).
macro_rules! lock_product {
    ($tx:expr, $db:expr, $product:expr) => {
        if $db.backend() == crate::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("media:{}", $product))
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// Rewrites a product's positions as 0..n in the order given, and makes sure one is main.
macro_rules! renumber {
    ($tx:expr, $ids:expr, $main:expr, $now:expr) => {
        for (i, id) in $ids.iter().enumerate() {
            sqlx::query(
                "UPDATE media_files SET position = $2, is_main = $3, \
                 updated_at = CASE WHEN position <> $2 OR is_main <> $3 THEN $4 ELSE updated_at END \
                 WHERE id = $1",
            )
            .bind(*id)
            .bind(i as i64)
            .bind(Some(*id) == $main)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

impl Media {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records an original: the product's image with the same bytes if there is one (not
    /// created), else a new `queued` image last in order, main if it is the product's first.
    /// Refused (409) when the product has `max_per_product` images already.
    pub async fn add(&self, new: &NewMediaFile, max_per_product: u32) -> Result<Added, StoreError> {
        let now = now_ms();
        let id = Uuid::now_v7();
        let db = &self.db;
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            lock_product!(tx, db, new.product_id);
            let existing = sqlx::query(&format!(
                "SELECT {FILE_COLUMNS} FROM media_files WHERE product_id = $1 AND sha256 = $2"
            ))
            .bind(new.product_id)
            .bind(&new.sha256)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = existing {
                let file = file_from_row(&r)?;
                tx.commit().await?;
                return Ok(Added { file, created: false });
            }
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM media_files WHERE product_id = $1")
                .bind(new.product_id)
                .fetch_one(&mut *tx)
                .await?;
            if count >= i64::from(max_per_product) {
                return Err(StoreError::Refused {
                    field: "file",
                    reason: format!(
                        "the product has {count} images, the most it may have is {max_per_product}"
                    ),
                });
            }
            let r = sqlx::query(&format!(
                "INSERT INTO media_files ({FILE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', NULL, $10, $10) RETURNING {FILE_COLUMNS}"
            ))
            .bind(id)
            .bind(new.product_id)
            .bind(&new.sha256)
            .bind(&new.ext)
            .bind(&new.content_type)
            .bind(new.size)
            .bind(count)
            .bind(count == 0)
            .bind(&new.source_url)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let file = file_from_row(&r)?;
            tx.commit().await?;
            Ok(Added { file, created: true })
        })
    }

    /// A product's images in order.
    pub async fn list(&self, product_id: Uuid) -> Result<Vec<MediaFile>, StoreError> {
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(&format!(
                "SELECT {FILE_COLUMNS} FROM media_files WHERE product_id = $1 ORDER BY position, id"
            ))
            .bind(product_id)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(file_from_row).collect()
        })
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<MediaFile>, StoreError> {
        with_conn!(self.db, |conn| {
            let r = sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM media_files WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            r.as_ref().map(file_from_row).transpose()
        })
    }

    /// An image's thumbnails, smallest first.
    pub async fn thumbnails(&self, id: Uuid) -> Result<Vec<MediaThumbnail>, StoreError> {
        with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT size, key, width, height, bytes, content_type FROM media_thumbnails \
                 WHERE media_id = $1 ORDER BY width, size",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(MediaThumbnail {
                        size: r.try_get("size")?,
                        key: r.try_get("key")?,
                        width: r.try_get::<i32, _>("width")?.into(),
                        height: r.try_get::<i32, _>("height")?.into(),
                        bytes: r.try_get("bytes")?,
                        content_type: r.try_get("content_type")?,
                    })
                })
                .collect()
        })
    }

    pub async fn metadata(&self, id: Uuid) -> Result<Option<MediaMetadata>, StoreError> {
        with_conn!(self.db, |conn| {
            let r = sqlx::query(
                "SELECT format, width, height, color_type, exif FROM media_metadata WHERE media_id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(r) = r else { return Ok(None) };
            let exif: Option<String> = r.try_get("exif")?;
            Ok(Some(MediaMetadata {
                format: r.try_get("format")?,
                width: r.try_get::<i32, _>("width")?.into(),
                height: r.try_get::<i32, _>("height")?.into(),
                color_type: r.try_get("color_type")?,
                exif: exif
                    .map(|e| serde_json::from_str(&e))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("media exif: {e}")))?,
            }))
        })
    }

    /// Sets an image's status (and error); false if the image is gone.
    pub async fn set_status(
        &self,
        id: Uuid,
        status: MediaStatus,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        Ok(with_conn!(self.db, |conn| {
            sqlx::query("UPDATE media_files SET status = $2, error = $3, updated_at = $4 WHERE id = $1")
                .bind(id)
                .bind(status.as_str())
                .bind(error)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                > 0
        }))
    }

    /// Records an image's thumbnails and metadata (replacing earlier ones) and marks it done, in
    /// one transaction. False if the image is gone.
    pub async fn finish(
        &self,
        id: Uuid,
        thumbs: &[MediaThumbnail],
        meta: &MediaMetadata,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let exif = meta.exif.as_ref().map(|e| e.to_string());
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            let found = sqlx::query(
                "UPDATE media_files SET status = 'done', error = NULL, updated_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if !found {
                return Ok(false);
            }
            sqlx::query("DELETE FROM media_thumbnails WHERE media_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for t in thumbs {
                sqlx::query(
                    "INSERT INTO media_thumbnails (media_id, size, key, width, height, bytes, content_type) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id)
                .bind(&t.size)
                .bind(&t.key)
                .bind(t.width as i32)
                .bind(t.height as i32)
                .bind(t.bytes)
                .bind(&t.content_type)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO media_metadata (media_id, format, width, height, color_type, exif) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (media_id) DO UPDATE SET \
                 format = excluded.format, width = excluded.width, height = excluded.height, \
                 color_type = excluded.color_type, exif = excluded.exif",
            )
            .bind(id)
            .bind(&meta.format)
            .bind(meta.width as i32)
            .bind(meta.height as i32)
            .bind(&meta.color_type)
            .bind(exif)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Moves an image to `position` (clamped to the product's images) and/or makes it the
    /// main one. `is_main: false` is refused: another image is made main instead.
    pub async fn update(
        &self,
        product_id: Uuid,
        id: Uuid,
        position: Option<i64>,
        is_main: Option<bool>,
    ) -> Result<Option<MediaFile>, StoreError> {
        if is_main == Some(false) {
            return Err(StoreError::Invalid {
                field: "is_main",
                reason: "a product keeps one main image: set is_main on another image instead".into(),
            });
        }
        let now = now_ms();
        let db = &self.db;
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            lock_product!(tx, db, product_id);
            let rows: Vec<(Uuid, bool)> = sqlx::query_as(
                "SELECT id, is_main FROM media_files WHERE product_id = $1 ORDER BY position, id",
            )
            .bind(product_id)
            .fetch_all(&mut *tx)
            .await?;
            let Some(at) = rows.iter().position(|r| r.0 == id) else {
                return Ok(None);
            };
            let mut ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
            let mut main = rows.iter().find(|r| r.1).map(|r| r.0).or(ids.first().copied());
            if let Some(p) = position {
                let moved = ids.remove(at);
                let to = p.clamp(0, ids.len() as i64) as usize;
                ids.insert(to, moved);
            }
            if is_main == Some(true) {
                main = Some(id);
            }
            renumber!(tx, ids, main, now);
            let r = sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM media_files WHERE id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let file = file_from_row(&r)?;
            tx.commit().await?;
            Ok(Some(file))
        })
    }

    /// Deletes an image with its thumbnails and metadata; the product's other images close
    /// the gap, and the first becomes main if it was. Answers the image, its thumbnails' keys
    /// and whether another image still uses the same bytes (then its objects stay).
    pub async fn delete(
        &self,
        product_id: Uuid,
        id: Uuid,
    ) -> Result<Option<(MediaFile, Vec<String>, bool)>, StoreError> {
        let now = now_ms();
        let db = &self.db;
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            lock_product!(tx, db, product_id);
            let r = sqlx::query(&format!(
                "SELECT {FILE_COLUMNS} FROM media_files WHERE id = $1 AND product_id = $2"
            ))
            .bind(id)
            .bind(product_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(r) = r else { return Ok(None) };
            let file = file_from_row(&r)?;
            let keys: Vec<String> =
                sqlx::query_scalar("SELECT key FROM media_thumbnails WHERE media_id = $1")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            for sql in [
                "DELETE FROM media_thumbnails WHERE media_id = $1",
                "DELETE FROM media_metadata WHERE media_id = $1",
                "DELETE FROM media_files WHERE id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            let rows: Vec<(Uuid, bool)> = sqlx::query_as(
                "SELECT id, is_main FROM media_files WHERE product_id = $1 ORDER BY position, id",
            )
            .bind(product_id)
            .fetch_all(&mut *tx)
            .await?;
            let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
            let main = rows.iter().find(|r| r.1).map(|r| r.0).or(ids.first().copied());
            renumber!(tx, ids, main, now);
            // Objects are keyed by product and hash: only the same product's row for the same
            // bytes (a re-upload racing this delete) shares them.
            let shared: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM media_files WHERE product_id = $1 AND sha256 = $2")
                    .bind(product_id)
                    .bind(&file.sha256)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(Some((file, keys, shared > 0)))
        })
    }

    /// The main images of these products, in one query (products without images are absent).
    pub async fn main_images(&self, product_ids: &[Uuid]) -> Result<Vec<MainImage>, StoreError> {
        if product_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=product_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT f.id, f.product_id, f.sha256, f.ext, f.status, m.width, m.height, t.size, t.key \
             FROM media_files f \
             LEFT JOIN media_metadata m ON m.media_id = f.id \
             LEFT JOIN media_thumbnails t ON t.media_id = f.id \
             WHERE f.is_main AND f.product_id IN ({}) \
             ORDER BY f.product_id, f.id, t.width, t.size",
            marks.join(", ")
        );
        let rows: Vec<MainRow> = with_conn!(self.db, |conn| {
            let mut q = sqlx::query_as::<_, MainRow>(&sql);
            for p in product_ids {
                q = q.bind(*p);
            }
            q.fetch_all(&mut *conn).await?
        });
        let mut out: Vec<MainImage> = Vec::new();
        for (id, product_id, sha256, ext, status, width, height, size, key) in rows {
            if out.last().is_none_or(|m| m.id != id) {
                out.push(MainImage {
                    id,
                    product_id,
                    sha256,
                    ext,
                    status: MediaStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("media status {status:?}")))?,
                    width: width.map(i64::from),
                    height: height.map(i64::from),
                    thumbnails: Vec::new(),
                });
            }
            if let (Some(size), Some(key), Some(m)) = (size, key, out.last_mut()) {
                m.thumbnails.push((size, key));
            }
        }
        Ok(out)
    }

    /// The source URLs these products' images were fetched from (an import's rows name them
    /// again at every run: only new ones are fetched), in one query.
    pub async fn source_urls(
        &self,
        product_ids: &[Uuid],
    ) -> Result<std::collections::HashSet<(Uuid, String)>, StoreError> {
        if product_ids.is_empty() {
            return Ok(Default::default());
        }
        let marks: Vec<String> = (1..=product_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT product_id, source_url FROM media_files \
             WHERE source_url IS NOT NULL AND product_id IN ({})",
            marks.join(", ")
        );
        let rows: Vec<(Uuid, String)> = with_conn!(self.db, |conn| {
            let mut q = sqlx::query_as::<_, (Uuid, String)>(&sql);
            for p in product_ids {
                q = q.bind(*p);
            }
            q.fetch_all(&mut *conn).await?
        });
        Ok(rows.into_iter().collect())
    }

    /// The images to process again: a product's, or every image (`None`).
    pub async fn ids(&self, product_id: Option<Uuid>) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            match product_id {
                Some(p) => {
                    sqlx::query_as::<_, (Uuid, Uuid)>(
                        "SELECT id, product_id FROM media_files WHERE product_id = $1 ORDER BY position",
                    )
                    .bind(p)
                    .fetch_all(&mut *conn)
                    .await?
                }
                None => {
                    sqlx::query_as::<_, (Uuid, Uuid)>("SELECT id, product_id FROM media_files ORDER BY id")
                        .fetch_all(&mut *conn)
                        .await?
                }
            }
        }))
    }

    pub async fn qrcode(&self, product_id: Uuid) -> Result<Option<ProductQrCode>, StoreError> {
        with_conn!(self.db, |conn| {
            let r = sqlx::query(
                "SELECT product_id, target, png_key, svg_key, created_at FROM product_qrcodes WHERE product_id = $1",
            )
            .bind(product_id)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(r) = r else { return Ok(None) };
            Ok(Some(ProductQrCode {
                product_id: r.try_get("product_id")?,
                target: r.try_get("target")?,
                png_key: r.try_get("png_key")?,
                svg_key: r.try_get("svg_key")?,
                created_at: r.try_get("created_at")?,
            }))
        })
    }

    /// Records a product's QR code, replacing the earlier one.
    pub async fn put_qrcode(&self, q: &ProductQrCode) -> Result<(), StoreError> {
        with_conn!(self.db, |conn| {
            sqlx::query(
                "INSERT INTO product_qrcodes (product_id, target, png_key, svg_key, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (product_id) DO UPDATE SET \
                 target = excluded.target, png_key = excluded.png_key, svg_key = excluded.svg_key, \
                 created_at = excluded.created_at",
            )
            .bind(q.product_id)
            .bind(&q.target)
            .bind(&q.png_key)
            .bind(&q.svg_key)
            .bind(q.created_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::backends;
    use crate::Databases;
    use pm_config::Database;

    fn new(product_id: Uuid, sha: &str) -> NewMediaFile {
        NewMediaFile {
            product_id,
            sha256: sha.into(),
            ext: "jpg".into(),
            content_type: "image/jpeg".into(),
            size: 10,
            source_url: None,
        }
    }

    #[tokio::test]
    async fn images_are_deduplicated_ordered_limited_moved_and_deleted() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            let m = Media::new(dbs.get(Database::Media).clone());
            let p = Uuid::now_v7();
            let a = m.add(&new(p, "aa"), 3).await.unwrap();
            assert!(
                a.created && a.file.is_main && a.file.position == 0,
                "{}",
                env.label
            );
            assert_eq!(a.file.status, MediaStatus::Queued);
            let again = m.add(&new(p, "aa"), 3).await.unwrap();
            assert!(!again.created);
            assert_eq!(again.file.id, a.file.id);
            let b = m.add(&new(p, "bb"), 3).await.unwrap().file;
            let c = m.add(&new(p, "cc"), 3).await.unwrap().file;
            assert_eq!((b.position, c.position, b.is_main), (1, 2, false));
            assert!(matches!(
                m.add(&new(p, "dd"), 3).await,
                Err(StoreError::Refused { .. })
            ));
            // The same bytes for another product are another image.
            assert!(m.add(&new(Uuid::now_v7(), "aa"), 3).await.unwrap().created);

            let moved = m.update(p, c.id, Some(0), Some(true)).await.unwrap().unwrap();
            assert_eq!((moved.position, moved.is_main), (0, true));
            let order: Vec<(Uuid, bool)> = m
                .list(p)
                .await
                .unwrap()
                .iter()
                .map(|f| (f.id, f.is_main))
                .collect();
            assert_eq!(order, vec![(c.id, true), (a.file.id, false), (b.id, false)]);
            assert!(m
                .update(p, Uuid::now_v7(), Some(1), None)
                .await
                .unwrap()
                .is_none());
            assert!(m.update(p, c.id, None, Some(false)).await.is_err());

            let thumbs = vec![MediaThumbnail {
                size: "small".into(),
                key: "k_small.jpg".into(),
                width: 150,
                height: 100,
                bytes: 1234,
                content_type: "image/jpeg".into(),
            }];
            let meta = MediaMetadata {
                format: "jpeg".into(),
                width: 300,
                height: 200,
                color_type: "rgb8".into(),
                exif: Some(serde_json::json!({"Make": "Acme"})),
            };
            assert!(m.finish(c.id, &thumbs, &meta).await.unwrap());
            // A rerun replaces, never duplicates.
            assert!(m.finish(c.id, &thumbs, &meta).await.unwrap());
            assert_eq!(m.thumbnails(c.id).await.unwrap(), thumbs);
            assert_eq!(m.metadata(c.id).await.unwrap().unwrap(), meta);
            assert_eq!(m.get(c.id).await.unwrap().unwrap().status, MediaStatus::Done);
            // One query for a page's main images; a product without images is absent.
            let mains = m.main_images(&[p, Uuid::now_v7()]).await.unwrap();
            assert_eq!(mains.len(), 1, "{}", env.label);
            assert_eq!(
                (mains[0].id, mains[0].width, mains[0].status),
                (c.id, Some(300), MediaStatus::Done)
            );
            assert_eq!(
                mains[0].thumbnails,
                vec![("small".to_owned(), "k_small.jpg".to_owned())]
            );
            assert!(m.main_images(&[]).await.unwrap().is_empty());
            assert!(m
                .set_status(b.id, MediaStatus::Failed, Some("corrupt"))
                .await
                .unwrap());
            assert_eq!(
                m.get(b.id).await.unwrap().unwrap().error.as_deref(),
                Some("corrupt")
            );

            let (gone, keys, shared) = m.delete(p, c.id).await.unwrap().unwrap();
            assert_eq!(
                (gone.id, keys, shared),
                (c.id, vec!["k_small.jpg".to_owned()], false)
            );
            assert!(m.thumbnails(c.id).await.unwrap().is_empty());
            let left = m.list(p).await.unwrap();
            assert_eq!(left.len(), 2);
            assert!(left[0].is_main && left[0].position == 0 && left[1].position == 1);
            assert!(m.delete(p, c.id).await.unwrap().is_none());
            assert_eq!(m.ids(Some(p)).await.unwrap().len(), 2);
            assert_eq!(m.ids(None).await.unwrap().len(), 3);

            let q = ProductQrCode {
                product_id: p,
                target: "https://example.com/p/1".into(),
                png_key: "qr.png".into(),
                svg_key: "qr.svg".into(),
                created_at: 5,
            };
            m.put_qrcode(&q).await.unwrap();
            m.put_qrcode(&q).await.unwrap();
            assert_eq!(m.qrcode(p).await.unwrap(), Some(q));
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
