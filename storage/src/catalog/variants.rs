//! Variants: products that are one combination of axis values (size M, colour red) of a
//! parent product. One level only: a parent is not itself a variant, a variant has no
//! variants, and all variants of a parent use the same axes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::common::{code, invalid, not_found, now, text, BeginLocked, RowExt};
use super::Catalog;
use crate::{with_conn, StoreError};

/// The key of the variants' write lock: the one-level and same-axes rules read other rows.
const LOCK: &str = "catalog.variants";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Variant {
    pub product_id: Uuid,
    pub parent_id: Uuid,
    /// Axis to value, e.g. `{"colour": "red", "size": "M"}`.
    pub axes: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "product_id, parent_id, axes, created_at, updated_at";

fn variant_from_row(r: &impl RowExt) -> Result<Variant, StoreError> {
    let axes: String = r.col("axes")?;
    Ok(Variant {
        product_id: r.col("product_id")?,
        parent_id: r.col("parent_id")?,
        axes: serde_json::from_str(&axes).map_err(|e| StoreError::Corrupt(format!("variant axes: {e}")))?,
        created_at: r.col("created_at")?,
        updated_at: r.col("updated_at")?,
    })
}

/// Checks axis names and values and returns the canonical JSON (sorted keys).
fn axes_json(axes: &BTreeMap<String, String>) -> Result<String, StoreError> {
    if axes.is_empty() || axes.len() > 8 {
        return Err(invalid("axes", "must name 1 to 8 axes"));
    }
    for (k, v) in axes {
        code("axes", k, 64)?;
        text("axes", v, 200)?;
    }
    serde_json::to_string(axes).map_err(|e| invalid("axes", e.to_string()))
}

impl Catalog {
    /// Makes `product_id` the variant of `parent_id` with these axis values (or changes its
    /// values). Refuses a product as its own variant, a parent that is a variant, a variant
    /// that has variants, axes other than its siblings', and a combination a sibling has.
    pub async fn set_variant(
        &self,
        parent_id: Uuid,
        product_id: Uuid,
        axes: BTreeMap<String, String>,
    ) -> Result<Variant, StoreError> {
        if parent_id == product_id {
            return Err(invalid("parent_id", "a product cannot be a variant of itself"));
        }
        let json = axes_json(&axes)?;
        let res = async {
            with_conn!(self.db, |conn| {
                let mut tx = conn.begin_locked(LOCK).await?;
                let parent_is_variant = sqlx::query("SELECT 1 FROM product_variants WHERE product_id = $1")
                    .bind(parent_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if parent_is_variant {
                    return Err(invalid("parent_id", format!("product {parent_id} is itself a variant")));
                }
                let has_variants = sqlx::query("SELECT 1 FROM product_variants WHERE parent_id = $1")
                    .bind(product_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if has_variants {
                    return Err(invalid("product_id", format!("product {product_id} has variants of its own")));
                }
                let sibling = sqlx::query("SELECT axes FROM product_variants WHERE parent_id = $1 AND product_id <> $2")
                    .bind(parent_id)
                    .bind(product_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = sibling {
                    let theirs: BTreeMap<String, String> = serde_json::from_str(&row.col::<String>("axes")?)
                        .map_err(|e| StoreError::Corrupt(format!("variant axes: {e}")))?;
                    if !theirs.keys().eq(axes.keys()) {
                        let names: Vec<&str> = theirs.keys().map(String::as_str).collect();
                        return Err(invalid("axes", format!("the variants of this parent use the axes {names:?}")));
                    }
                }
                let now = now();
                let sql = format!(
                    "INSERT INTO product_variants ({COLUMNS}) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (product_id) \
                     DO UPDATE SET parent_id = excluded.parent_id, axes = excluded.axes, updated_at = excluded.updated_at \
                     RETURNING {COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(product_id)
                    .bind(parent_id)
                    .bind(&json)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                let v = variant_from_row(&row)?;
                tx.commit().await?;
                Ok(v)
            })
        }
        .await;
        let taken = || StoreError::Conflict {
            entity: "variant",
            field: "axes",
            value: json.clone(),
        };
        let refs = [
            ("parent_id", "products", parent_id),
            ("product_id", "products", product_id),
        ];
        self.explain(res, taken, &refs).await
    }

    /// The variant record of a product; `NotFound` when it is not a variant.
    pub async fn get_variant(&self, product_id: Uuid) -> Result<Variant, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM product_variants WHERE product_id = $1");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql)
                .bind(product_id)
                .fetch_optional(&mut *conn)
                .await?;
            variant_from_row(&row.ok_or_else(|| not_found("variant", product_id))?)
        })
    }

    /// The variants of a parent, in product id order.
    pub async fn variants(&self, parent_id: Uuid) -> Result<Vec<Variant>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM product_variants WHERE parent_id = $1 ORDER BY product_id");
        Ok(with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql).bind(parent_id).fetch_all(&mut *conn).await?;
            rows.iter().map(variant_from_row).collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Makes a variant a product on its own again.
    pub async fn remove_variant(&self, product_id: Uuid) -> Result<(), StoreError> {
        self.delete_row("product_variants", "product_id", "variant", product_id)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::common::testing::{assert_conflict, assert_invalid, open, product};
    use crate::testing::backends;

    fn axes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn variants_of_a_parent() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let shirt = product(&cat, "Shirt").await;
            let red_m = product(&cat, "Shirt red M").await;
            let red_l = product(&cat, "Shirt red L").await;
            let v = cat
                .set_variant(shirt, red_m, axes(&[("size", "M"), ("colour", "red")]))
                .await
                .unwrap();
            assert_eq!(v.axes, axes(&[("colour", "red"), ("size", "M")]), "{l}");
            assert_eq!(cat.get_variant(red_m).await.unwrap(), v, "{l}");
            cat.set_variant(shirt, red_l, axes(&[("colour", "red"), ("size", "L")]))
                .await
                .unwrap();
            let all = cat.variants(shirt).await.unwrap();
            assert_eq!(all.len(), 2, "{l}");

            assert_invalid(
                cat.set_variant(shirt, shirt, axes(&[("size", "S")])).await,
                "parent_id",
                l,
            );
            assert_conflict(
                cat.set_variant(shirt, red_l, axes(&[("colour", "red"), ("size", "M")]))
                    .await,
                "axes",
                l,
            );
            let other = product(&cat, "Shirt blue").await;
            assert_invalid(
                cat.set_variant(shirt, other, axes(&[("colour", "blue")])).await,
                "axes",
                l,
            );
            assert_invalid(
                cat.set_variant(red_m, other, axes(&[("fit", "slim")])).await,
                "parent_id",
                l,
            );
            assert_invalid(
                cat.set_variant(other, shirt, axes(&[("fit", "slim")])).await,
                "product_id",
                l,
            );
            assert_invalid(cat.set_variant(shirt, other, BTreeMap::new()).await, "axes", l);
            assert_invalid(
                cat.set_variant(Uuid::now_v7(), other, axes(&[("size", "M")]))
                    .await,
                "parent_id",
                l,
            );
            cat.remove_variant(red_m).await.unwrap();
            assert!(
                matches!(cat.get_variant(red_m).await, Err(StoreError::NotFound { .. })),
                "{l}"
            );
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
