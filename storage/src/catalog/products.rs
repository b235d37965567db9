//! Products: create, read, partial update, delete, keyset-paginated lists.

//! Queries of the catalog database.

use chrono::{DateTime, Utc};
use pm_domain::{Asin, Gtin, ProductStatus};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::{Catalog, Page};
use crate::{with_conn, StoreError};

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: Uuid,
    pub ean: Option<Gtin>,
    pub sku: Option<String>,
    pub asin: Option<Asin>,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub status: ProductStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A product to create; values are already validated.
#[derive(Debug, Clone, Default)]
pub struct NewProduct {
    pub ean: Option<Gtin>,
    pub sku: Option<String>,
    pub asin: Option<Asin>,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub status: ProductStatus,
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub ean: Option<Option<Gtin>>,
    pub sku: Option<Option<String>>,
    pub asin: Option<Option<Asin>>,
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub brand: Option<Option<String>>,
    pub status: Option<ProductStatus>,
}

/// Filters of the product list.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    pub status: Option<ProductStatus>,
    pub ean: Option<Gtin>,
    pub sku: Option<String>,
}

const COLUMNS: &str = "id, ean, sku, asin, title, description, brand, status, created_at, updated_at";

fn map_unique(e: sqlx::Error, ean: Option<&Gtin>) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
            entity: "product",
            field: "ean",
            value: ean.map(ToString::to_string).unwrap_or_default(),
        },
        _ => e.into(),
    }
}

fn product_from_row<R: Row>(row: &R) -> Result<Product, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let corrupt = |what: String| StoreError::Corrupt(what);
    let ean: Option<String> = row.try_get("ean")?;
    let asin: Option<String> = row.try_get("asin")?;
    let status: String = row.try_get("status")?;
    Ok(Product {
        id: row.try_get("id")?,
        ean: ean
            .map(|s| Gtin::parse(&s))
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?,
        sku: row.try_get("sku")?,
        asin: asin
            .map(|s| Asin::parse(&s))
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        brand: row.try_get("brand")?,
        status: status
            .parse()
            .map_err(|e: pm_domain::UnknownStatus| corrupt(e.to_string()))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn not_found(id: Uuid) -> StoreError {
    StoreError::NotFound {
        entity: "product",
        id: id.to_string(),
    }
}

impl Catalog {
    pub async fn create_product(&self, p: NewProduct) -> Result<Product, StoreError> {
        // UUIDv7: time-ordered, so the primary key is also the creation order that keyset
        // pagination walks.
        let id = Uuid::now_v7();
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO products ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {COLUMNS}"
        );
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(p.ean.as_ref().map(Gtin::as_str))
                .bind(p.sku.as_deref())
                .bind(p.asin.as_ref().map(Asin::as_str))
                .bind(&p.title)
                .bind(p.description.as_deref())
                .bind(p.brand.as_deref())
                .bind(p.status.as_str())
                .bind(now)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| map_unique(e, p.ean.as_ref()))?;
            product_from_row(&row)
        })
    }

    pub async fn get_product(&self, id: Uuid) -> Result<Product, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
            product_from_row(&row.ok_or_else(|| not_found(id))?)
        })
    }

    /// Applies `patch` in one statement, so concurrent patches of different fields never
    /// overwrite each other.
    pub async fn update_product(&self, id: Uuid, patch: ProductPatch) -> Result<Product, StoreError> {
        let sql = format!(
            "UPDATE products SET \
             ean = CASE WHEN $2 THEN $3 ELSE ean END, \
             sku = CASE WHEN $4 THEN $5 ELSE sku END, \
             asin = CASE WHEN $6 THEN $7 ELSE asin END, \
             title = COALESCE($8, title), \
             description = CASE WHEN $9 THEN $10 ELSE description END, \
             brand = CASE WHEN $11 THEN $12 ELSE brand END, \
             status = COALESCE($13, status), \
             updated_at = $14 \
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let ean = patch.ean.flatten();
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(patch.ean.is_some())
                .bind(ean.as_ref().map(Gtin::as_str))
                .bind(patch.sku.is_some())
                .bind(patch.sku.clone().flatten())
                .bind(patch.asin.is_some())
                .bind(patch.asin.clone().flatten().map(|a| a.as_str().to_owned()))
                .bind(patch.title.clone())
                .bind(patch.description.is_some())
                .bind(patch.description.clone().flatten())
                .bind(patch.brand.is_some())
                .bind(patch.brand.clone().flatten())
                .bind(patch.status.map(ProductStatus::as_str))
                .bind(Utc::now())
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| map_unique(e, ean.as_ref()))?;
            product_from_row(&row.ok_or_else(|| not_found(id))?)
        })
    }

    pub async fn delete_product(&self, id: Uuid) -> Result<(), StoreError> {
        let done = with_conn!(self.db, |conn| {
            sqlx::query("DELETE FROM products WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// Lists products in creation order, `limit` at a time, after `cursor`.
    pub async fn list_products(
        &self,
        filter: &ProductFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Product>, StoreError> {
        let after = cursor
            .map(|c| Uuid::try_parse(c).map_err(|_| StoreError::BadCursor))
            .transpose()?;
        let mut sql = format!("SELECT {COLUMNS} FROM products WHERE 1 = 1");
        let mut n = 0;
        let mut next = |sql: &mut String, clause: &str| {
            n += 1;
            sql.push_str(&clause.replace('?', &format!("${n}")));
        };
        if after.is_some() {
            next(&mut sql, " AND id > ?");
        }
        if filter.status.is_some() {
            next(&mut sql, " AND status = ?");
        }
        if filter.ean.is_some() {
            next(&mut sql, " AND ean = ?");
        }
        if filter.sku.is_some() {
            next(&mut sql, " AND sku = ?");
        }
        next(&mut sql, " ORDER BY id LIMIT ?");
        let fetch = i64::from(limit) + 1;
        let mut items = with_conn!(self.db, |conn| {
            let mut q = sqlx::query(&sql);
            if let Some(a) = after {
                q = q.bind(a);
            }
            if let Some(s) = filter.status {
                q = q.bind(s.as_str());
            }
            if let Some(e) = &filter.ean {
                q = q.bind(e.as_str());
            }
            if let Some(s) = &filter.sku {
                q = q.bind(s.as_str());
            }
            let rows = q.bind(fetch).fetch_all(&mut *conn).await?;
            rows.iter().map(product_from_row).collect::<Result<Vec<_>, _>>()?
        });
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|p| p.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::backends;
    use crate::Databases;
    use pm_config::Database;

    fn gtin(s: &str) -> Gtin {
        Gtin::parse(s).unwrap()
    }

    #[tokio::test]
    async fn product_crud_on_every_backend() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            let cat = Catalog::new(dbs.get(Database::Catalog).clone());
            let label = env.label;

            let p = cat
                .create_product(NewProduct {
                    ean: Some(gtin("887276302195")),
                    sku: Some("SKU-1".into()),
                    title: "Galaxy Tab".into(),
                    brand: Some("Samsung".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(p.ean.unwrap().as_str(), "0887276302195", "{label}");
            assert_eq!(p.status, ProductStatus::Draft);
            assert_eq!(cat.get_product(p.id).await.unwrap(), p, "{label}");

            // The same GTIN spelled as EAN-13 is the same product: refused.
            let dup = cat
                .create_product(NewProduct {
                    ean: Some(gtin("0887276302195")),
                    title: "x".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert!(
                matches!(dup, StoreError::Conflict { field: "ean", .. }),
                "{label}: {dup:?}"
            );

            // Patch: set some fields, clear one, leave the rest.
            let patched = cat
                .update_product(
                    p.id,
                    ProductPatch {
                        title: Some("Galaxy Tab S".into()),
                        brand: Some(None),
                        asin: Some(Some(Asin::parse("B07N4M94X4").unwrap())),
                        status: Some(ProductStatus::Active),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(patched.title, "Galaxy Tab S");
            assert_eq!(patched.brand, None);
            assert_eq!(patched.sku.as_deref(), Some("SKU-1"));
            assert_eq!(patched.asin.as_ref().unwrap().as_str(), "B07N4M94X4");
            assert_eq!(patched.status, ProductStatus::Active);
            assert!(patched.updated_at >= p.updated_at);
            assert_eq!(patched.created_at, p.created_at, "{label}");

            cat.delete_product(p.id).await.unwrap();
            assert!(matches!(
                cat.get_product(p.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                cat.delete_product(p.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                cat.update_product(p.id, ProductPatch::default()).await,
                Err(StoreError::NotFound { .. })
            ));
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn keyset_pagination_walks_everything_once_with_filters() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            let cat = Catalog::new(dbs.get(Database::Catalog).clone());
            let mut ids = Vec::new();
            for i in 0..7 {
                let status = if i % 2 == 0 {
                    ProductStatus::Active
                } else {
                    ProductStatus::Draft
                };
                let p = cat
                    .create_product(NewProduct {
                        title: format!("p{i}"),
                        status,
                        sku: Some(format!("S{i}")),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                ids.push(p.id);
            }
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = cat
                    .list_products(&ProductFilter::default(), 3, cursor.as_deref())
                    .await
                    .unwrap();
                assert!(page.items.len() <= 3);
                seen.extend(page.items.iter().map(|p| p.id));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen, ids, "{}", env.label);
            let active = cat
                .list_products(
                    &ProductFilter {
                        status: Some(ProductStatus::Active),
                        ..Default::default()
                    },
                    100,
                    None,
                )
                .await
                .unwrap();
            assert_eq!(active.items.len(), 4);
            let by_sku = cat
                .list_products(
                    &ProductFilter {
                        sku: Some("S3".into()),
                        ..Default::default()
                    },
                    100,
                    None,
                )
                .await
                .unwrap();
            assert_eq!(by_sku.items.len(), 1);
            assert!(matches!(
                cat.list_products(&ProductFilter::default(), 3, Some("not-a-cursor"))
                    .await,
                Err(StoreError::BadCursor)
            ));
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn migrations_are_idempotent_and_databases_report_health() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            dbs.close().await;
            // A second start finds everything in place.
            let dbs = Databases::open(&env.settings).await.unwrap();
            for (db, d) in dbs.dbs.iter() {
                assert!(d.ping().await.is_ok(), "{} {db}", env.label);
                let s = d.stats();
                assert_eq!(s.configured, 2);
                assert_eq!(s.waiting, 0);
            }
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn a_database_holding_another_schema_is_refused() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            dbs.close().await;
            // Point `media` at the catalog database.
            let mut s = env.settings.clone();
            match s.database_location(Database::Catalog) {
                pm_config::DatabaseLocation::Sqlite(_) => {
                    s.storage.data_dir = env.settings.storage.data_dir.clone();
                    std::fs::copy(
                        s.storage.data_dir.join("catalog.db"),
                        s.storage.data_dir.join("media.db"),
                    )
                    .ok();
                    let _ = std::fs::remove_file(s.storage.data_dir.join("media.db-wal"));
                }
                pm_config::DatabaseLocation::Postgres { url, .. } => {
                    s.database.urls.media = Some(url);
                }
            }
            let err = crate::Db::open(&s, Database::Media).await.unwrap_err();
            assert!(
                matches!(err, StoreError::WrongDatabase { ref found, .. } if found == "catalog"),
                "{}: {err}",
                env.label
            );
            env.cleanup().await;
        }
    }
}
