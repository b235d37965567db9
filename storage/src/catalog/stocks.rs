//! Stock per product and warehouse, and its history: a history row is written only when a
//! quantity actually changes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::common::{code, invalid, not_found, now, BeginLocked, ChangeSource, Changed, Entity, RowExt};
use super::{Catalog, Page};
use crate::{with_conn, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stock {
    pub id: Uuid,
    pub product_id: Uuid,
    /// Warehouse or location code.
    pub warehouse: String,
    pub quantity: i64,
    pub updated_at: DateTime<Utc>,
}

/// One change of a stock: `old` is `None` for the first stock in a warehouse, `new` when the
/// row was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StockChange {
    pub id: Uuid,
    pub product_id: Uuid,
    pub warehouse: String,
    pub old: Option<i64>,
    pub new: Option<i64>,
    pub source: ChangeSource,
    pub changed_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, product_id, warehouse, quantity, updated_at";

impl Entity for Stock {
    const NAME: &'static str = "stock";
    const TABLE: &'static str = "product_stocks";
    const COLUMNS: &'static str = COLUMNS;

    fn from_row(r: &impl RowExt) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.col("id")?,
            product_id: r.col("product_id")?,
            warehouse: r.col("warehouse")?,
            quantity: r.col("quantity")?,
            updated_at: r.col("updated_at")?,
        })
    }

    fn id(&self) -> Uuid {
        self.id
    }
}

impl Entity for StockChange {
    const NAME: &'static str = "stock change";
    const TABLE: &'static str = "stock_history";
    const COLUMNS: &'static str =
        "id, product_id, warehouse, old_quantity, new_quantity, source, import_job_id, changed_at";

    fn from_row(r: &impl RowExt) -> Result<Self, StoreError> {
        let kind: String = r.col("source")?;
        Ok(Self {
            id: r.col("id")?,
            product_id: r.col("product_id")?,
            warehouse: r.col("warehouse")?,
            old: r.col("old_quantity")?,
            new: r.col("new_quantity")?,
            source: ChangeSource::from_columns(&kind, r.col("import_job_id")?)?,
            changed_at: r.col("changed_at")?,
        })
    }

    fn id(&self) -> Uuid {
        self.id
    }
}

fn lock_key(product_id: Uuid) -> String {
    format!("catalog.stocks.{product_id}")
}

fn warehouse(w: &str) -> Result<String, StoreError> {
    code("warehouse", w, 64)
}

const RECORD: &str =
    "INSERT INTO stock_history (id, product_id, warehouse, old_quantity, new_quantity, source, \
     import_job_id, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

impl Catalog {
    /// Sets the stock of a product in a warehouse. A history row (with `source`) is written
    /// only when the quantity changes; `changed` says whether it did. Negative is refused.
    pub async fn set_stock(
        &self,
        product_id: Uuid,
        warehouse: &str,
        quantity: i64,
        source: ChangeSource,
    ) -> Result<Changed<Stock>, StoreError> {
        let warehouse = self::warehouse(warehouse)?;
        let quantity = super::common::quantity("quantity", quantity)?;
        let res = async {
            with_conn!(self.db, |conn| {
                let mut tx = conn.begin_locked(&lock_key(product_id)).await?;
                let sql =
                    format!("SELECT {COLUMNS} FROM product_stocks WHERE product_id = $1 AND warehouse = $2");
                let old = sqlx::query(&sql)
                    .bind(product_id)
                    .bind(&warehouse)
                    .fetch_optional(&mut *tx)
                    .await?;
                let old = old.as_ref().map(Stock::from_row).transpose()?;
                if let Some(o) = old.as_ref().filter(|o| o.quantity == quantity) {
                    return Ok(Changed {
                        value: o.clone(),
                        changed: false,
                    });
                }
                let now = now();
                let sql = format!(
                    "INSERT INTO product_stocks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (product_id, warehouse) DO UPDATE SET quantity = excluded.quantity, \
                     updated_at = excluded.updated_at RETURNING {COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(product_id)
                    .bind(&warehouse)
                    .bind(quantity)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                let stored = Stock::from_row(&row)?;
                sqlx::query(RECORD)
                    .bind(Uuid::now_v7())
                    .bind(product_id)
                    .bind(&warehouse)
                    .bind(old.map(|o| o.quantity))
                    .bind(Some(quantity))
                    .bind(source.kind())
                    .bind(source.job_id())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                // An import's hashes of this product's offers no longer say what is stored.
                sqlx::query(super::import_batch::CLEAR_ROW_HASHES)
                    .bind(product_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Changed {
                    value: stored,
                    changed: true,
                })
            })
        }
        .await;
        let refs = [("product_id", "products", product_id)];
        self.explain(res, || invalid("warehouse", "conflict"), &refs)
            .await
    }

    /// The stocks of a product, by warehouse.
    pub async fn stocks(&self, product_id: Uuid) -> Result<Vec<Stock>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM product_stocks WHERE product_id = $1 ORDER BY warehouse");
        Ok(with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql).bind(product_id).fetch_all(&mut *conn).await?;
            rows.iter().map(Stock::from_row).collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Deletes the stock of a product in a warehouse, recording the deletion in the history.
    pub async fn delete_stock(
        &self,
        product_id: Uuid,
        warehouse: &str,
        source: ChangeSource,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM product_stocks WHERE product_id = $1 AND warehouse = $2 RETURNING {COLUMNS}"
        );
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_locked(&lock_key(product_id)).await?;
            let row = sqlx::query(&sql)
                .bind(product_id)
                .bind(warehouse)
                .fetch_optional(&mut *tx)
                .await?;
            let old = Stock::from_row(
                &row.ok_or_else(|| not_found("stock", format!("{product_id}/{warehouse}")))?,
            )?;
            sqlx::query(RECORD)
                .bind(Uuid::now_v7())
                .bind(product_id)
                .bind(warehouse)
                .bind(Some(old.quantity))
                .bind(None::<i64>)
                .bind(source.kind())
                .bind(source.job_id())
                .bind(now())
                .execute(&mut *tx)
                .await?;
            sqlx::query(super::import_batch::CLEAR_ROW_HASHES)
                .bind(product_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The stock changes of a product in `[from, to)`, oldest first.
    pub async fn stock_history(
        &self,
        product_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<StockChange>, StoreError> {
        self.history(product_id, from, to, limit, cursor).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::catalog::common::testing::{assert_invalid, open, product};
    use crate::testing::backends;

    #[tokio::test]
    async fn stock_history_only_on_change() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let pid = product(&cat, "Tab").await;
            let job = ChangeSource::Import {
                job_id: Uuid::now_v7(),
            };
            let start = now();
            assert!(
                cat.set_stock(pid, "main", 10, ChangeSource::Api)
                    .await
                    .unwrap()
                    .changed,
                "{l}"
            );
            assert!(!cat.set_stock(pid, "main", 10, job).await.unwrap().changed, "{l}");
            let s = cat.set_stock(pid, "main", 0, job).await.unwrap();
            assert!(s.changed);
            assert_eq!(s.value.quantity, 0);
            cat.set_stock(pid, "paris-2", 5, ChangeSource::Api).await.unwrap();
            let stocks = cat.stocks(pid).await.unwrap();
            let got: Vec<_> = stocks
                .iter()
                .map(|s| (s.warehouse.as_str(), s.quantity))
                .collect();
            assert_eq!(got, [("main", 0), ("paris-2", 5)], "{l}");

            assert_invalid(
                cat.set_stock(pid, "main", -1, ChangeSource::Api).await,
                "quantity",
                l,
            );
            assert_invalid(cat.set_stock(pid, "", 1, ChangeSource::Api).await, "warehouse", l);
            assert_invalid(
                cat.set_stock(Uuid::now_v7(), "main", 1, ChangeSource::Api).await,
                "product_id",
                l,
            );

            cat.delete_stock(pid, "paris-2", ChangeSource::Api).await.unwrap();
            let end = now() + Duration::seconds(1);
            let h = cat.stock_history(pid, start, end, 10, None).await.unwrap();
            let seen: Vec<_> = h
                .items
                .iter()
                .map(|c| (c.warehouse.as_str(), c.old, c.new, c.source))
                .collect();
            assert_eq!(
                seen,
                [
                    ("main", None, Some(10), ChangeSource::Api),
                    ("main", Some(10), Some(0), job),
                    ("paris-2", None, Some(5), ChangeSource::Api),
                    ("paris-2", Some(5), None, ChangeSource::Api),
                ],
                "{l}"
            );
            let none = cat
                .stock_history(pid, end, end + Duration::hours(1), 10, None)
                .await
                .unwrap();
            assert!(none.items.is_empty(), "{l}");
            assert!(matches!(
                cat.delete_stock(pid, "paris-2", ChangeSource::Api).await,
                Err(StoreError::NotFound { .. })
            ));
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
