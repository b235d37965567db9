//! Brands: the curated list that supplier spellings ("SAMSUNG", "Samsung Electronics") map to.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::common::{
    derived_slug, not_found, now, nth_slug, slug, text, Entity, RowExt, DERIVED_SLUG_ATTEMPTS,
};
use super::{Catalog, Page};
use crate::{with_conn, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Brand {
    pub id: Uuid,
    pub name: String,
    /// URL name, unique.
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewBrand {
    pub name: String,
    /// `None`: derived from the name.
    pub slug: Option<String>,
}

/// A partial update: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct BrandPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
}

const COLUMNS: &str = "id, name, slug, created_at, updated_at";

impl Entity for Brand {
    const NAME: &'static str = "brand";
    const TABLE: &'static str = "brands";
    const COLUMNS: &'static str = COLUMNS;

    fn from_row(r: &impl RowExt) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.col("id")?,
            name: r.col("name")?,
            slug: r.col("slug")?,
            created_at: r.col("created_at")?,
            updated_at: r.col("updated_at")?,
        })
    }

    fn id(&self) -> Uuid {
        self.id
    }
}

fn slug_taken(s: &str) -> impl FnOnce() -> StoreError + '_ {
    move || StoreError::Conflict {
        entity: "brand",
        field: "slug",
        value: s.to_owned(),
    }
}

impl Catalog {
    /// Creates a brand; without a slug, one is derived from the name, with `-2`, `-3`, ...
    /// appended while another brand has it.
    pub async fn create_brand(&self, b: NewBrand) -> Result<Brand, StoreError> {
        let name = text("name", &b.name, 200)?;
        let Some(given) = &b.slug else {
            let base = derived_slug(&name)?;
            let mut n = 1;
            loop {
                match self.insert_brand(&name, nth_slug(&base, n)).await {
                    Err(StoreError::Conflict { field: "slug", .. }) if n < DERIVED_SLUG_ATTEMPTS => n += 1,
                    r => return r,
                }
            }
        };
        let slug = slug("slug", given)?;
        self.insert_brand(&name, slug).await
    }

    async fn insert_brand(&self, name: &str, slug: String) -> Result<Brand, StoreError> {
        let sql = format!("INSERT INTO brands ({COLUMNS}) VALUES ($1, $2, $3, $4, $4) RETURNING {COLUMNS}");
        let res = async {
            with_conn!(self.db, |conn| {
                let row = sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(name)
                    .bind(&slug)
                    .bind(now())
                    .fetch_one(&mut *conn)
                    .await?;
                Brand::from_row(&row)
            })
        }
        .await;
        self.explain(res, slug_taken(&slug), &[]).await
    }

    pub async fn get_brand(&self, id: Uuid) -> Result<Brand, StoreError> {
        self.get_entity(id).await
    }

    pub async fn update_brand(&self, id: Uuid, patch: BrandPatch) -> Result<Brand, StoreError> {
        let name = patch.name.as_deref().map(|n| text("name", n, 200)).transpose()?;
        let slug = patch.slug.as_deref().map(|s| slug("slug", s)).transpose()?;
        let sql = format!(
            "UPDATE brands SET name = COALESCE($2, name), slug = COALESCE($3, slug), updated_at = $4 \
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let res = async {
            with_conn!(self.db, |conn| {
                let row = sqlx::query(&sql)
                    .bind(id)
                    .bind(name.as_deref())
                    .bind(slug.as_deref())
                    .bind(now())
                    .fetch_optional(&mut *conn)
                    .await?;
                Brand::from_row(&row.ok_or_else(|| not_found("brand", id))?)
            })
        }
        .await;
        self.explain(res, slug_taken(slug.as_deref().unwrap_or_default()), &[])
            .await
    }

    /// Refused (409) while products (live or in the trash) use the brand.
    pub async fn delete_brand(&self, id: Uuid) -> Result<(), StoreError> {
        let users = self.products_referencing("brand_id", id).await?;
        if users > 0 {
            return Err(StoreError::Refused {
                field: "id",
                reason: format!("brand {id} is used by {users} products: give them another brand first"),
            });
        }
        self.delete_row("brands", "id", "brand", id).await
    }

    /// Brands in creation order.
    pub async fn list_brands(&self, limit: u32, cursor: Option<&str>) -> Result<Page<Brand>, StoreError> {
        self.list_entities("TRUE", &[], limit, cursor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::common::testing::{assert_conflict, assert_invalid, open};
    use crate::testing::backends;

    #[tokio::test]
    async fn brand_crud_and_bad_input() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let new = |slug: &str| NewBrand {
                name: "Samsung".into(),
                slug: Some(slug.into()),
            };
            let b = cat.create_brand(new("samsung")).await.unwrap();
            assert_eq!(cat.get_brand(b.id).await.unwrap(), b, "{l}");
            assert_conflict(cat.create_brand(new("samsung")).await, "slug", l);
            assert_invalid(cat.create_brand(new("Sam sung")).await, "slug", l);
            assert_invalid(
                cat.create_brand(NewBrand {
                    name: " ".into(),
                    slug: Some("x".into()),
                })
                .await,
                "name",
                l,
            );
            let apple = cat.create_brand(new("apple")).await.unwrap();
            let patch = BrandPatch {
                name: Some("Samsung Electronics".into()),
                ..Default::default()
            };
            let u = cat.update_brand(b.id, patch).await.unwrap();
            assert_eq!(
                (u.name.as_str(), u.slug.as_str()),
                ("Samsung Electronics", "samsung"),
                "{l}"
            );
            let clash = BrandPatch {
                slug: Some("apple".into()),
                ..Default::default()
            };
            assert_conflict(cat.update_brand(b.id, clash).await, "slug", l);
            let all = cat.list_brands(10, None).await.unwrap();
            assert_eq!(
                all.items.iter().map(|b| b.id).collect::<Vec<_>>(),
                [b.id, apple.id],
                "{l}"
            );
            // No slug: derived from the name, unique among brands.
            let derive = |name: &str| NewBrand {
                name: name.into(),
                slug: None,
            };
            let loreal = cat.create_brand(derive("L'Oréal Paris")).await.unwrap();
            assert_eq!(loreal.slug, "l-oreal-paris", "{l}");
            let again = cat.create_brand(derive("L’OREAL paris")).await.unwrap();
            assert_eq!(again.slug, "l-oreal-paris-2", "{l}");
            let samsung = cat.create_brand(derive("Samsung")).await.unwrap();
            assert_eq!(samsung.slug, "samsung-2", "{l}");
            assert_invalid(cat.create_brand(derive("---")).await, "slug", l);
            for x in [loreal, again, samsung] {
                cat.delete_brand(x.id).await.unwrap();
            }
            cat.delete_brand(b.id).await.unwrap();
            assert!(
                matches!(cat.get_brand(b.id).await, Err(StoreError::NotFound { .. })),
                "{l}"
            );
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
