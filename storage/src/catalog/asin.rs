//! What Code2ASIN reads from and writes to the catalog: the EANs of a selection of products,
//! and the ASINs it found for them.

use pm_domain::{Asin, Gtin};
use sqlx::Row;
use uuid::Uuid;

use super::Catalog;
use crate::{with_conn, StoreError};

/// Which products a Code2ASIN job looks up (every field narrows; live products with an EAN).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AsinSelection {
    /// Products a supplier offers.
    pub supplier_id: Option<Uuid>,
    /// Only products without an ASIN yet.
    pub without_asin: bool,
    /// Products in this category (any taxonomy).
    pub category_id: Option<Uuid>,
}

impl Catalog {
    /// The EANs of the selected products, in product order, at most `limit`.
    pub async fn eans_of(&self, s: &AsinSelection, limit: u32) -> Result<Vec<String>, StoreError> {
        let mut sql =
            String::from("SELECT p.ean FROM products p WHERE p.deleted_at IS NULL AND p.ean IS NOT NULL");
        if s.without_asin {
            sql.push_str(" AND p.asin IS NULL");
        }
        if s.supplier_id.is_some() {
            sql.push_str(" AND EXISTS (SELECT 1 FROM supplier_products sp WHERE sp.product_id = p.id AND sp.supplier_id = $1)");
        }
        if s.category_id.is_some() {
            sql.push_str(" AND EXISTS (SELECT 1 FROM product_categories pc WHERE pc.product_id = p.id AND pc.category_id = $2)");
        }
        sql.push_str(" ORDER BY p.id LIMIT $3");
        Ok(with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(s.supplier_id.unwrap_or_default())
                .bind(s.category_id.unwrap_or_default())
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("ean"))
                .collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Sets the ASIN of the live product of each EAN (one transaction); returns the ids of the
    /// products whose ASIN changed (a product that already has it is left alone).
    pub async fn set_asins(&self, pairs: &[(Gtin, Asin)]) -> Result<Vec<Uuid>, StoreError> {
        let now = chrono::Utc::now();
        let mut changed = Vec::new();
        with_conn!(self.db, |conn| {
            let mut tx = crate::db::BeginLocked::begin_write(&mut conn).await?;
            for (ean, asin) in pairs {
                let id: Option<Uuid> = sqlx::query_scalar(
                    "UPDATE products SET asin = $1, version = version + 1, updated_at = $2 \
                     WHERE ean = $3 AND deleted_at IS NULL AND (asin IS NULL OR asin <> $1) RETURNING id",
                )
                .bind(asin.as_str())
                .bind(now)
                .bind(ean.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                changed.extend(id);
            }
            tx.commit().await?;
        });
        Ok(changed)
    }
}
