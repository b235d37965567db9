//! Categories: a tree kept with materialised paths, and the categories of a product in each
//! taxonomy (internal, Amazon, Google, ...).
//!
//! `path` holds the ids from the root (`/<root>/<child>/`), so a subtree is one indexed
//! `path LIKE '<node path>%'` instead of a recursive query, and `slug_path` the slugs
//! (`electronics/phones`), unique, which makes slugs unique among siblings (a `UNIQUE
//! (parent_id, slug)` would let roots, whose parent is NULL, share a slug). Writes that touch
//! paths hold the tree's write lock, so a move never interleaves with another move or with a
//! create under the moving subtree.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::common::{
    code, derived_slug, invalid, not_found, now, nth_slug, slug, text, Arg, BeginLocked, Entity, RowExt,
    DERIVED_SLUG_ATTEMPTS,
};
use super::{Catalog, Page};
use crate::{with_conn, StoreError};

/// The key of the category tree's write lock.
const TREE_LOCK: &str = "catalog.categories";

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Category {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    /// URL name, unique among siblings.
    pub slug: String,
    /// Ids from the root: `/<root-id>/<child-id>/`.
    pub path: String,
    /// Slugs from the root: `electronics/phones`.
    pub slug_path: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewCategory {
    /// `None`: a root.
    pub parent_id: Option<Uuid>,
    pub name: String,
    /// `None`: derived from the name.
    pub slug: Option<String>,
}

/// A partial update; the parent changes with [`Catalog::move_category`].
#[derive(Debug, Clone, Default)]
pub struct CategoryPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
}

/// A category of a product in one taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProductCategory {
    pub product_id: Uuid,
    pub category_id: Uuid,
    pub taxonomy: String,
}

const COLUMNS: &str = "id, parent_id, name, slug, path, slug_path, created_at, updated_at";

impl Entity for Category {
    const NAME: &'static str = "category";
    const TABLE: &'static str = "categories";
    const COLUMNS: &'static str = COLUMNS;

    fn from_row(r: &impl RowExt) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.col("id")?,
            parent_id: r.col("parent_id")?,
            name: r.col("name")?,
            slug: r.col("slug")?,
            path: r.col("path")?,
            slug_path: r.col("slug_path")?,
            created_at: r.col("created_at")?,
            updated_at: r.col("updated_at")?,
        })
    }

    fn id(&self) -> Uuid {
        self.id
    }
}

fn slug_taken(slug_path: String) -> impl FnOnce() -> StoreError {
    move || StoreError::Conflict {
        entity: "category",
        field: "slug",
        value: slug_path,
    }
}

/// A taxonomy name: `internal`, `amazon`, `google`, `amazon.de`.
fn taxonomy(t: &str) -> Result<String, StoreError> {
    code("taxonomy", t, 32)
}

/// The paths of a node under `parent` (`None`: a root).
fn paths_under(parent: Option<&(String, String)>, id: Uuid, slug: &str) -> (String, String) {
    let slug_path = slug_path_under(parent.map(|(_, s)| s.as_str()), slug);
    match parent {
        Some((path, _)) => (format!("{path}{id}/"), slug_path),
        None => (format!("/{id}/"), slug_path),
    }
}

/// The slug path of a node `slug` under the node whose slug path is `parent` (`None`: a root).
fn slug_path_under(parent: Option<&str>, slug: &str) -> String {
    match parent {
        Some(p) => format!("{p}/{slug}"),
        None => slug.to_owned(),
    }
}

impl Catalog {
    /// Creates a category; without a slug, one is derived from the name, with `-2`, `-3`, ...
    /// appended while a sibling has it.
    pub async fn create_category(&self, c: NewCategory) -> Result<Category, StoreError> {
        let name = text("name", &c.name, 200)?;
        let Some(given) = &c.slug else {
            let base = derived_slug(&name)?;
            let mut n = 1;
            loop {
                match self.insert_category(c.parent_id, &name, nth_slug(&base, n)).await {
                    Err(StoreError::Conflict { field: "slug", .. }) if n < DERIVED_SLUG_ATTEMPTS => n += 1,
                    r => return r,
                }
            }
        };
        let slug = slug("slug", given)?;
        self.insert_category(c.parent_id, &name, slug).await
    }

    /// The category at `names` (its levels from the root: `["Clothing", "Tshirts"]`), made
    /// level by level where missing: an import's category path. A level is found by its slug
    /// under its parent (`clothing/tshirts`), so `T-Shirts` and `t shirts` name one category,
    /// whoever made it; two writers that make the same level at once end with the one that
    /// committed first. A level without a letter or digit to make a slug of is refused.
    pub async fn ensure_category_path(&self, names: &[String]) -> Result<Category, StoreError> {
        let mut parent: Option<Category> = None;
        for name in names {
            let name = text("category_path", name.trim(), 200)?;
            let slug = derived_slug(&name).map_err(|_| {
                invalid(
                    "category_path",
                    format!("the level {name:?} has no letter or digit to name a category by"),
                )
            })?;
            let slug_path = slug_path_under(parent.as_ref().map(|p| p.slug_path.as_str()), &slug);
            let cat = match self.category_by_slug_path(&slug_path).await? {
                Some(c) => c,
                None => match self
                    .insert_category(parent.as_ref().map(|p| p.id), &name, slug)
                    .await
                {
                    Ok(c) => c,
                    // Made meanwhile by another writer: that one.
                    Err(StoreError::Conflict { field: "slug", .. }) => self
                        .category_by_slug_path(&slug_path)
                        .await?
                        .ok_or_else(|| not_found("category", &slug_path))?,
                    Err(e) => return Err(e),
                },
            };
            parent = Some(cat);
        }
        parent.ok_or_else(|| invalid("category_path", "has no level"))
    }

    async fn category_by_slug_path(&self, slug_path: &str) -> Result<Option<Category>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM categories WHERE slug_path = $1");
        Ok(with_conn!(self.db, |conn| {
            match sqlx::query(&sql)
                .bind(slug_path)
                .fetch_optional(&mut *conn)
                .await?
            {
                Some(row) => Some(Category::from_row(&row)?),
                None => None,
            }
        }))
    }

    async fn insert_category(
        &self,
        parent_id: Option<Uuid>,
        name: &str,
        slug: String,
    ) -> Result<Category, StoreError> {
        let id = Uuid::now_v7();
        let insert = format!(
            "INSERT INTO categories ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLUMNS}"
        );
        let mut slug_path = String::new();
        let res = async {
            with_conn!(self.db, |conn| {
                let mut tx = conn.begin_locked(TREE_LOCK).await?;
                let parent = match parent_id {
                    Some(pid) => Some(parent_row(&mut tx, pid).await?),
                    None => None,
                };
                let path;
                (path, slug_path) = paths_under(parent.as_ref(), id, &slug);
                let row = sqlx::query(&insert)
                    .bind(id)
                    .bind(parent_id)
                    .bind(name)
                    .bind(&slug)
                    .bind(&path)
                    .bind(&slug_path)
                    .bind(now())
                    .fetch_one(&mut *tx)
                    .await?;
                let cat = Category::from_row(&row)?;
                tx.commit().await?;
                Ok(cat)
            })
        }
        .await;
        self.explain(res, slug_taken(slug_path), &[]).await
    }

    pub async fn get_category(&self, id: Uuid) -> Result<Category, StoreError> {
        self.get_entity(id).await
    }

    /// Renames; a new slug rewrites the slug paths of the whole subtree in one transaction.
    pub async fn update_category(&self, id: Uuid, patch: CategoryPatch) -> Result<Category, StoreError> {
        let name = patch.name.as_deref().map(|n| text("name", n, 200)).transpose()?;
        let slug = patch.slug.as_deref().map(|s| slug("slug", s)).transpose()?;
        let mut new_slug_path = String::new();
        let res = async {
            with_conn!(self.db, |conn| {
                let mut tx = conn.begin_locked(TREE_LOCK).await?;
                let node = category_row(&mut tx, id).await?.ok_or_else(|| not_found("category", id))?;
                let slug = slug.unwrap_or_else(|| node.slug.clone());
                let parent_prefix = &node.slug_path[..node.slug_path.len() - node.slug.len()];
                new_slug_path = format!("{parent_prefix}{slug}");
                // Only a new slug changes the slug paths below.
                if new_slug_path != node.slug_path {
                    rewrite_subtree(&mut tx, &node, &node.path, &new_slug_path).await?;
                }
                sqlx::query("UPDATE categories SET name = COALESCE($2, name), slug = $3, updated_at = $4 WHERE id = $1")
                    .bind(id)
                    .bind(name.as_deref())
                    .bind(&slug)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            })
        }
        .await;
        self.explain(res, slug_taken(new_slug_path), &[]).await?;
        self.get_category(id).await
    }

    /// Moves `id` and its subtree under `new_parent` (`None`: makes it a root), rewriting the
    /// paths of the whole subtree in one transaction. Refuses to move a category under itself
    /// or one of its descendants, and a slug that the new siblings already use.
    pub async fn move_category(&self, id: Uuid, new_parent: Option<Uuid>) -> Result<Category, StoreError> {
        let mut new_slug_path = String::new();
        let res = async {
            with_conn!(self.db, |conn| {
                let mut tx = conn.begin_locked(TREE_LOCK).await?;
                let node = category_row(&mut tx, id)
                    .await?
                    .ok_or_else(|| not_found("category", id))?;
                let parent = match new_parent {
                    Some(pid) => Some(parent_row(&mut tx, pid).await?),
                    None => None,
                };
                if let Some((parent_path, _)) = &parent {
                    if parent_path.starts_with(&node.path) {
                        return Err(invalid(
                            "parent_id",
                            format!("moving category {id} under its own subtree would create a cycle"),
                        ));
                    }
                }
                let new_path;
                (new_path, new_slug_path) = paths_under(parent.as_ref(), id, &node.slug);
                rewrite_subtree(&mut tx, &node, &new_path, &new_slug_path).await?;
                sqlx::query("UPDATE categories SET parent_id = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(new_parent)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            })
        }
        .await;
        self.explain(res, slug_taken(new_slug_path), &[]).await?;
        self.get_category(id).await
    }

    /// Deletes a category that has no subcategories; its product assignments go with it.
    /// Refused (409) while products have it as their primary category; its assignments to
    /// products (`product_categories`) go with it.
    pub async fn delete_category(&self, id: Uuid) -> Result<(), StoreError> {
        let users = self.products_referencing("primary_category_id", id).await?;
        if users > 0 {
            return Err(StoreError::Refused {
                field: "id",
                reason: format!(
                    "category {id} is the primary category of {users} products: give them another first"
                ),
            });
        }
        match self.delete_row("categories", "id", "category", id).await {
            Err(StoreError::Database(e)) if super::common::is_foreign_key(&e) => Err(invalid(
                "id",
                format!("category {id} has subcategories: move or delete them first"),
            )),
            other => other,
        }
    }

    /// The children of `parent` (`None`: the roots), in creation order.
    pub async fn list_categories(
        &self,
        parent: Option<Uuid>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Category>, StoreError> {
        match parent {
            Some(p) => {
                self.list_entities("parent_id = $2", &[Arg::Uuid(p)], limit, cursor)
                    .await
            }
            None => self.list_entities("parent_id IS NULL", &[], limit, cursor).await,
        }
    }

    /// `id` and all its descendants, in creation order.
    pub async fn list_subtree(
        &self,
        id: Uuid,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Category>, StoreError> {
        let root: Category = self.get_entity(id).await?;
        let prefix = Arg::Text(format!("{}%", root.path));
        self.list_entities("path LIKE $2", &[prefix], limit, cursor).await
    }

    /// Puts a product in a category of a taxonomy; doing it twice is not an error.
    pub async fn assign_category(
        &self,
        product_id: Uuid,
        category_id: Uuid,
        taxonomy: &str,
    ) -> Result<(), StoreError> {
        let taxonomy = self::taxonomy(taxonomy)?;
        let res = async {
            with_conn!(self.db, |conn| {
                sqlx::query(
                    "INSERT INTO product_categories (product_id, category_id, taxonomy) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(product_id)
                .bind(category_id)
                .bind(&taxonomy)
                .execute(&mut *conn)
                .await?;
            });
            Ok(())
        }
        .await;
        let refs = [
            ("product_id", "products", product_id),
            ("category_id", "categories", category_id),
        ];
        self.explain(res, || invalid("taxonomy", "already assigned"), &refs)
            .await
    }

    /// Takes a product out of a category of a taxonomy; `NotFound` when it was not in it.
    pub async fn unassign_category(
        &self,
        product_id: Uuid,
        category_id: Uuid,
        taxonomy: &str,
    ) -> Result<(), StoreError> {
        let done = with_conn!(self.db, |conn| {
            sqlx::query(
                "DELETE FROM product_categories WHERE product_id = $1 AND category_id = $2 AND taxonomy = $3",
            )
            .bind(product_id)
            .bind(category_id)
            .bind(taxonomy)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(not_found(
                "product category",
                format!("{product_id}/{category_id}/{taxonomy}"),
            ));
        }
        Ok(())
    }

    /// The categories of a product, by taxonomy then category.
    pub async fn product_categories(&self, product_id: Uuid) -> Result<Vec<ProductCategory>, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            let rows = sqlx::query(
                "SELECT product_id, category_id, taxonomy FROM product_categories WHERE product_id = $1 \
                 ORDER BY taxonomy, category_id",
            )
            .bind(product_id)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok::<_, StoreError>(ProductCategory {
                        product_id: r.col("product_id")?,
                        category_id: r.col("category_id")?,
                        taxonomy: r.col("taxonomy")?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }))
    }
}

/// Reads a category inside a transaction.
async fn category_row<'c, DB>(
    tx: &mut sqlx::Transaction<'c, DB>,
    id: Uuid,
) -> Result<Option<Category>, StoreError>
where
    DB: sqlx::Database,
    DB::Row: RowExt,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let sql = format!("SELECT {COLUMNS} FROM categories WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.as_ref().map(Category::from_row).transpose()
}

/// The paths of the would-be parent `id`; an unknown one is refused naming `parent_id`.
async fn parent_row<'c, DB>(
    tx: &mut sqlx::Transaction<'c, DB>,
    id: Uuid,
) -> Result<(String, String), StoreError>
where
    DB: sqlx::Database,
    DB::Row: RowExt,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let parent = category_row(tx, id).await?;
    let p = parent.ok_or_else(|| invalid("parent_id", format!("no category with id {id}")))?;
    Ok((p.path, p.slug_path))
}

/// Rewrites `path` and `slug_path` of `node` and every descendant: the old prefixes are
/// replaced by the new ones in one statement. Lengths are in characters on both backends;
/// paths and slugs are ASCII, so bytes and characters agree.
async fn rewrite_subtree<'c, DB>(
    tx: &mut sqlx::Transaction<'c, DB>,
    node: &Category,
    new_path: &str,
    new_slug_path: &str,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let from = |s: &str| i32::try_from(s.len() + 1).unwrap_or(i32::MAX);
    sqlx::query(
        "UPDATE categories SET path = $1 || substr(path, $2), slug_path = $3 || substr(slug_path, $4) \
         WHERE path LIKE $5",
    )
    .bind(new_path.to_owned())
    .bind(from(&node.path))
    .bind(new_slug_path.to_owned())
    .bind(from(&node.slug_path))
    .bind(format!("{}%", node.path))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::common::testing::{assert_conflict, assert_invalid, open, product};
    use crate::testing::backends;

    async fn add(cat: &Catalog, parent: Option<&Category>, slug: &str) -> Category {
        let c = NewCategory {
            parent_id: parent.map(|p| p.id),
            name: slug.to_uppercase(),
            slug: Some(slug.into()),
        };
        cat.create_category(c).await.unwrap()
    }

    async fn subtree(cat: &Catalog, id: Uuid) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = cat.list_subtree(id, 2, cursor.as_deref()).await.unwrap();
            out.extend(page.items.into_iter().map(|c| c.slug_path));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn tree_create_move_subtree_and_cycles() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let electronics = add(&cat, None, "electronics").await;
            let phones = add(&cat, Some(&electronics), "phones").await;
            let android = add(&cat, Some(&phones), "android").await;
            let home = add(&cat, None, "home").await;
            assert_eq!(electronics.path, format!("/{}/", electronics.id), "{l}");
            assert_eq!(
                android.path,
                format!("/{}/{}/{}/", electronics.id, phones.id, android.id)
            );
            assert_eq!(android.slug_path, "electronics/phones/android");
            assert_eq!(cat.get_category(android.id).await.unwrap(), android, "{l}");

            // Slugs are unique among siblings only, roots included.
            let dup = NewCategory {
                parent_id: Some(electronics.id),
                name: "x".into(),
                slug: Some("phones".into()),
            };
            assert_conflict(cat.create_category(dup).await, "slug", l);
            let root_dup = NewCategory {
                parent_id: None,
                name: "x".into(),
                slug: Some("home".into()),
            };
            assert_conflict(cat.create_category(root_dup).await, "slug", l);
            let home_phones = add(&cat, Some(&home), "phones").await;
            let unknown = NewCategory {
                parent_id: Some(Uuid::now_v7()),
                name: "x".into(),
                slug: Some("x".into()),
            };
            assert_invalid(cat.create_category(unknown).await, "parent_id", l);

            // No slug: derived from the name, made unique among siblings, never invented from
            // nothing.
            let derive = |parent: Option<Uuid>, name: &str| NewCategory {
                parent_id: parent,
                name: name.into(),
                slug: None,
            };
            let tv = cat
                .create_category(derive(Some(electronics.id), "Télévisions & Vidéo"))
                .await
                .unwrap();
            assert_eq!(tv.slug, "televisions-video", "{l}");
            assert_eq!(tv.slug_path, "electronics/televisions-video", "{l}");
            let tv2 = cat
                .create_category(derive(Some(electronics.id), "Televisions video"))
                .await
                .unwrap();
            assert_eq!(tv2.slug, "televisions-video-2", "{l}");
            let elsewhere = cat
                .create_category(derive(Some(home.id), "Télévisions & Vidéo"))
                .await
                .unwrap();
            assert_eq!(elsewhere.slug, "televisions-video", "{l}");
            let phones_again = cat
                .create_category(derive(Some(electronics.id), "Phones"))
                .await
                .unwrap();
            assert_eq!(phones_again.slug, "phones-2", "{l}");
            assert_invalid(cat.create_category(derive(None, "!!!")).await, "slug", l);
            for c in [tv, tv2, elsewhere, phones_again] {
                cat.delete_category(c.id).await.unwrap();
            }

            assert_eq!(
                subtree(&cat, electronics.id).await,
                ["electronics", "electronics/phones", "electronics/phones/android"],
                "{l}"
            );
            let roots = cat.list_categories(None, 10, None).await.unwrap();
            assert_eq!(
                roots.items.iter().map(|c| c.id).collect::<Vec<_>>(),
                [electronics.id, home.id]
            );
            let children = cat.list_categories(Some(electronics.id), 10, None).await.unwrap();
            assert_eq!(
                children.items.iter().map(|c| c.id).collect::<Vec<_>>(),
                [phones.id]
            );

            // Cycles: under itself, under a descendant.
            assert_invalid(
                cat.move_category(electronics.id, Some(electronics.id)).await,
                "parent_id",
                l,
            );
            assert_invalid(
                cat.move_category(electronics.id, Some(android.id)).await,
                "parent_id",
                l,
            );
            // A slug the new siblings use.
            assert_conflict(cat.move_category(phones.id, Some(home.id)).await, "slug", l);
            cat.delete_category(home_phones.id).await.unwrap();

            // Move the subtree: every path below is rewritten.
            let moved = cat.move_category(phones.id, Some(home.id)).await.unwrap();
            assert_eq!(moved.parent_id, Some(home.id), "{l}");
            assert_eq!(moved.path, format!("/{}/{}/", home.id, phones.id));
            let android = cat.get_category(android.id).await.unwrap();
            assert_eq!(
                android.path,
                format!("/{}/{}/{}/", home.id, phones.id, android.id),
                "{l}"
            );
            assert_eq!(android.slug_path, "home/phones/android");
            assert_eq!(subtree(&cat, electronics.id).await, ["electronics"], "{l}");
            assert_eq!(
                subtree(&cat, home.id).await,
                ["home", "home/phones", "home/phones/android"]
            );

            // To the top, then a new slug: the slug paths below follow.
            let top = cat.move_category(phones.id, None).await.unwrap();
            assert_eq!(
                (top.parent_id, top.path.clone()),
                (None, format!("/{}/", phones.id)),
                "{l}"
            );
            let renamed = CategoryPatch {
                slug: Some("mobiles".into()),
                name: Some("Mobiles".into()),
            };
            let r = cat.update_category(phones.id, renamed).await.unwrap();
            assert_eq!((r.slug_path.as_str(), r.name.as_str()), ("mobiles", "Mobiles"));
            assert_eq!(
                subtree(&cat, phones.id).await,
                ["mobiles", "mobiles/android"],
                "{l}"
            );
            let clash = CategoryPatch {
                slug: Some("home".into()),
                ..Default::default()
            };
            assert_conflict(cat.update_category(phones.id, clash).await, "slug", l);

            // A category with children is not deleted.
            assert_invalid(cat.delete_category(phones.id).await, "id", l);
            cat.delete_category(android.id).await.unwrap();
            cat.delete_category(phones.id).await.unwrap();
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn product_categories_per_taxonomy() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let pid = product(&cat, "Tab").await;
            let tablets = add(&cat, None, "tablets").await;
            let amazon = add(&cat, None, "amazon-tablets").await;
            cat.assign_category(pid, tablets.id, "internal").await.unwrap();
            cat.assign_category(pid, tablets.id, "internal").await.unwrap();
            cat.assign_category(pid, amazon.id, "amazon").await.unwrap();
            cat.assign_category(pid, tablets.id, "google").await.unwrap();
            let got = cat.product_categories(pid).await.unwrap();
            let got: Vec<_> = got.iter().map(|c| (c.taxonomy.as_str(), c.category_id)).collect();
            assert_eq!(
                got,
                [
                    ("amazon", amazon.id),
                    ("google", tablets.id),
                    ("internal", tablets.id)
                ],
                "{l}"
            );
            assert_invalid(
                cat.assign_category(pid, tablets.id, "bad taxonomy").await,
                "taxonomy",
                l,
            );
            assert_invalid(
                cat.assign_category(pid, Uuid::now_v7(), "internal").await,
                "category_id",
                l,
            );
            assert_invalid(
                cat.assign_category(Uuid::now_v7(), tablets.id, "internal").await,
                "product_id",
                l,
            );
            cat.unassign_category(pid, tablets.id, "google").await.unwrap();
            assert!(matches!(
                cat.unassign_category(pid, tablets.id, "google").await,
                Err(StoreError::NotFound { .. })
            ));
            // Deleting a category drops its assignments.
            cat.delete_category(amazon.id).await.unwrap();
            assert_eq!(cat.product_categories(pid).await.unwrap().len(), 1, "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
