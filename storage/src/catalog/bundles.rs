//! Bundles: a product sold as a set of other products, each with a quantity. A bundle may
//! contain another bundle, but never itself, directly or through the bundles it contains.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{invalid, not_found, now, BeginLocked, RowExt};
use super::Catalog;
use crate::{with_conn, StoreError};

/// The key of the bundles' write lock: the containment check reads other bundles.
const LOCK: &str = "catalog.bundles";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Bundle {
    /// The bundle's own product.
    pub product_id: Uuid,
    pub items: Vec<BundleItem>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BundleItem {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// Whether `bundle` appears among the products `item` contains, at any depth (`item` being
/// a bundle itself). `UNION` (not `UNION ALL`) ends the recursion on an existing cycle.
const CONTAINS: &str = "WITH RECURSIVE inside(id) AS ( \
         SELECT product_id FROM bundle_items WHERE bundle_id = $1 \
         UNION SELECT bi.product_id FROM bundle_items bi JOIN inside ON bi.bundle_id = inside.id) \
     SELECT 1 FROM inside WHERE id = $2";

fn check_item(bundle_id: Uuid, item: &BundleItem) -> Result<(), StoreError> {
    if item.product_id == bundle_id {
        return Err(invalid("product_id", "a bundle cannot contain itself"));
    }
    if item.quantity <= 0 {
        return Err(invalid(
            "quantity",
            format!("must be at least 1, found {}", item.quantity),
        ));
    }
    Ok(())
}

impl Catalog {
    /// Makes `product_id` a bundle of `items` (possibly none yet).
    pub async fn create_bundle(&self, product_id: Uuid, items: &[BundleItem]) -> Result<Bundle, StoreError> {
        for (i, item) in items.iter().enumerate() {
            check_item(product_id, item)?;
            if items[..i].iter().any(|o| o.product_id == item.product_id) {
                return Err(invalid(
                    "items",
                    format!("product {} is listed twice", item.product_id),
                ));
            }
        }
        let res = async {
            with_conn!(self.db, |conn| {
                let mut tx = conn.begin_locked(LOCK).await?;
                sqlx::query("INSERT INTO bundles (product_id, created_at) VALUES ($1, $2)")
                    .bind(product_id)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                for item in items {
                    let cycle = sqlx::query(CONTAINS)
                        .bind(item.product_id)
                        .bind(product_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if cycle.is_some() {
                        return Err(contains_itself(item.product_id));
                    }
                    sqlx::query(
                        "INSERT INTO bundle_items (bundle_id, product_id, quantity) VALUES ($1, $2, $3)",
                    )
                    .bind(product_id)
                    .bind(item.product_id)
                    .bind(item.quantity)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        }
        .await;
        let mut refs = vec![("product_id", "products", product_id)];
        refs.extend(items.iter().map(|i| ("items", "products", i.product_id)));
        let taken = || StoreError::Refused {
            field: "product_id",
            reason: format!(
                "product {product_id} already is a bundle: change its items, or delete the bundle first"
            ),
        };
        self.explain(res, taken, &refs).await?;
        self.get_bundle(product_id).await
    }

    /// Adds an item to a bundle or changes its quantity.
    pub async fn set_bundle_item(&self, bundle_id: Uuid, item: BundleItem) -> Result<Bundle, StoreError> {
        check_item(bundle_id, &item)?;
        let res = async {
            with_conn!(self.db, |conn| {
                let mut tx = conn.begin_locked(LOCK).await?;
                let cycle = sqlx::query(CONTAINS)
                    .bind(item.product_id)
                    .bind(bundle_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if cycle.is_some() {
                    return Err(contains_itself(item.product_id));
                }
                sqlx::query(
                    "INSERT INTO bundle_items (bundle_id, product_id, quantity) VALUES ($1, $2, $3) \
                     ON CONFLICT (bundle_id, product_id) DO UPDATE SET quantity = excluded.quantity",
                )
                .bind(bundle_id)
                .bind(item.product_id)
                .bind(item.quantity)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            })
        }
        .await;
        let refs = [
            ("bundle_id", "bundles", bundle_id),
            ("product_id", "products", item.product_id),
        ];
        self.explain(res, || invalid("product_id", "conflict"), &refs)
            .await?;
        self.get_bundle(bundle_id).await
    }

    pub async fn remove_bundle_item(&self, bundle_id: Uuid, product_id: Uuid) -> Result<Bundle, StoreError> {
        let done = with_conn!(self.db, |conn| {
            sqlx::query("DELETE FROM bundle_items WHERE bundle_id = $1 AND product_id = $2")
                .bind(bundle_id)
                .bind(product_id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(not_found("bundle item", format!("{bundle_id}/{product_id}")));
        }
        self.get_bundle(bundle_id).await
    }

    /// A bundle with its items (by product id).
    pub async fn get_bundle(&self, product_id: Uuid) -> Result<Bundle, StoreError> {
        with_conn!(self.db, |conn| {
            let head = sqlx::query("SELECT product_id, created_at FROM bundles WHERE product_id = $1")
                .bind(product_id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| not_found("bundle", product_id))?;
            let rows = sqlx::query(
                "SELECT product_id, quantity FROM bundle_items WHERE bundle_id = $1 ORDER BY product_id",
            )
            .bind(product_id)
            .fetch_all(&mut *conn)
            .await?;
            let items = rows
                .iter()
                .map(|r| {
                    Ok::<_, StoreError>(BundleItem {
                        product_id: r.col("product_id")?,
                        quantity: r.col("quantity")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Bundle {
                product_id,
                items,
                created_at: head.col("created_at")?,
            })
        })
    }

    /// Makes a bundle a plain product again (its items go with it).
    pub async fn delete_bundle(&self, product_id: Uuid) -> Result<(), StoreError> {
        self.delete_row("bundles", "product_id", "bundle", product_id)
            .await
    }
}

fn contains_itself(item: Uuid) -> StoreError {
    invalid(
        "product_id",
        format!("bundle {item} contains this bundle: a bundle cannot contain itself"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::common::testing::{assert_invalid, open, product};
    use crate::testing::backends;

    fn item(product_id: Uuid, quantity: i32) -> BundleItem {
        BundleItem { product_id, quantity }
    }

    #[tokio::test]
    async fn bundles_with_quantities_never_contain_themselves() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let kit = product(&cat, "Kit").await;
            let cable = product(&cat, "Cable").await;
            let charger = product(&cat, "Charger").await;
            let b = cat
                .create_bundle(kit, &[item(cable, 2), item(charger, 1)])
                .await
                .unwrap();
            assert_eq!(b.items.len(), 2, "{l}");
            assert_eq!(cat.get_bundle(kit).await.unwrap(), b, "{l}");

            assert_invalid(cat.set_bundle_item(kit, item(kit, 1)).await, "product_id", l);
            assert_invalid(cat.set_bundle_item(kit, item(cable, 0)).await, "quantity", l);
            assert_invalid(cat.create_bundle(cable, &[item(cable, 1)]).await, "product_id", l);
            assert_invalid(
                cat.create_bundle(cable, &[item(kit, 1), item(kit, 2)]).await,
                "items",
                l,
            );
            // Through another bundle: big contains kit, so kit may not contain big.
            let big = product(&cat, "Big kit").await;
            cat.create_bundle(big, &[item(kit, 1)]).await.unwrap();
            assert_invalid(cat.set_bundle_item(kit, item(big, 1)).await, "product_id", l);
            assert_invalid(
                cat.set_bundle_item(Uuid::now_v7(), item(cable, 1)).await,
                "bundle_id",
                l,
            );
            assert_invalid(
                cat.set_bundle_item(kit, item(Uuid::now_v7(), 1)).await,
                "product_id",
                l,
            );

            let b = cat.set_bundle_item(kit, item(cable, 3)).await.unwrap();
            assert_eq!(
                b.items.iter().find(|i| i.product_id == cable).unwrap().quantity,
                3,
                "{l}"
            );
            let b = cat.remove_bundle_item(kit, charger).await.unwrap();
            assert_eq!(b.items, [item(cable, 3)], "{l}");
            cat.delete_bundle(kit).await.unwrap();
            assert!(
                matches!(cat.get_bundle(kit).await, Err(StoreError::NotFound { .. })),
                "{l}"
            );
            // The kit is still a product in the big kit: only its own items went.
            assert_eq!(cat.get_bundle(big).await.unwrap().items, [item(kit, 1)], "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
