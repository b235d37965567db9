//! Search-engine fields of a product: its URL slug (unique), meta title and description.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::common::{not_found, now, opt_text, slug, RowExt};
use super::Catalog;
use crate::{with_conn, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Seo {
    pub product_id: Uuid,
    pub slug: String,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewSeo {
    pub slug: String,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
}

const COLUMNS: &str = "product_id, slug, meta_title, meta_description, updated_at";

fn seo_from_row(r: &impl RowExt) -> Result<Seo, StoreError> {
    Ok(Seo {
        product_id: r.col("product_id")?,
        slug: r.col("slug")?,
        meta_title: r.col("meta_title")?,
        meta_description: r.col("meta_description")?,
        updated_at: r.col("updated_at")?,
    })
}

impl Catalog {
    /// Sets (creates or replaces) the SEO fields of a product; a slug another product uses is
    /// a conflict.
    pub async fn set_seo(&self, product_id: Uuid, s: NewSeo) -> Result<Seo, StoreError> {
        let slug = slug("slug", &s.slug)?;
        // Generous bounds: search engines cut at ~60 and ~160 characters, but where to cut is
        // an editorial choice, not a storage rule.
        let title = opt_text("meta_title", s.meta_title.as_deref(), 300)?;
        let description = opt_text("meta_description", s.meta_description.as_deref(), 1000)?;
        let sql = format!(
            "INSERT INTO product_seo ({COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (product_id) DO UPDATE SET \
             slug = excluded.slug, meta_title = excluded.meta_title, \
             meta_description = excluded.meta_description, updated_at = excluded.updated_at RETURNING {COLUMNS}"
        );
        let res = async {
            with_conn!(self.db, |conn| {
                let row = sqlx::query(&sql)
                    .bind(product_id)
                    .bind(&slug)
                    .bind(title.as_deref())
                    .bind(description.as_deref())
                    .bind(now())
                    .fetch_one(&mut *conn)
                    .await?;
                seo_from_row(&row)
            })
        }
        .await;
        let taken = || StoreError::Conflict {
            entity: "product",
            field: "slug",
            value: slug.clone(),
        };
        self.explain(res, taken, &[("product_id", "products", product_id)])
            .await
    }

    pub async fn get_seo(&self, product_id: Uuid) -> Result<Seo, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM product_seo WHERE product_id = $1");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql)
                .bind(product_id)
                .fetch_optional(&mut *conn)
                .await?;
            seo_from_row(&row.ok_or_else(|| not_found("seo of product", product_id))?)
        })
    }

    /// The SEO fields (and so the product) of a slug.
    pub async fn seo_by_slug(&self, slug: &str) -> Result<Seo, StoreError> {
        // A trashed product's slug does not resolve while it is in the trash.
        let cols = COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM product_seo s JOIN products p ON p.id = s.product_id \
             WHERE s.slug = $1 AND p.deleted_at IS NULL"
        );
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(slug).fetch_optional(&mut *conn).await?;
            seo_from_row(&row.ok_or_else(|| not_found("slug", slug))?)
        })
    }

    pub async fn delete_seo(&self, product_id: Uuid) -> Result<(), StoreError> {
        self.delete_row("product_seo", "product_id", "seo of product", product_id)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::common::testing::{assert_conflict, assert_invalid, open, product};
    use crate::testing::backends;

    fn seo(slug: &str) -> NewSeo {
        NewSeo {
            slug: slug.into(),
            meta_title: Some("Galaxy Tab".into()),
            meta_description: None,
        }
    }

    #[tokio::test]
    async fn seo_per_product_with_unique_slug() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let a = product(&cat, "A").await;
            let b = product(&cat, "B").await;
            let s = cat.set_seo(a, seo("galaxy-tab")).await.unwrap();
            assert_eq!(cat.get_seo(a).await.unwrap(), s, "{l}");
            assert_eq!(cat.seo_by_slug("galaxy-tab").await.unwrap().product_id, a, "{l}");
            let s2 = cat.set_seo(a, seo("galaxy-tab-s")).await.unwrap();
            assert_eq!(s2.slug, "galaxy-tab-s", "{l}");
            assert_conflict(cat.set_seo(b, seo("galaxy-tab-s")).await, "slug", l);
            assert_invalid(cat.set_seo(b, seo("Galaxy Tab")).await, "slug", l);
            assert_invalid(cat.set_seo(Uuid::now_v7(), seo("x")).await, "product_id", l);
            cat.delete_seo(a).await.unwrap();
            assert!(
                matches!(cat.get_seo(a).await, Err(StoreError::NotFound { .. })),
                "{l}"
            );
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
