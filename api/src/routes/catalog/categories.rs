//! The category tree, and the categories of a product in each taxonomy.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{
    AssignCategory, CreateCategory, DeleteCategory, GetCategory, ListCategories, ListSubtree, MoveCategory,
    ProductCategories, UnassignCategory, UpdateCategory,
};
use pm_domain::Permission;
use pm_storage::cache::Kind;
use pm_storage::catalog::{Category, CategoryPatch, NewCategory, ProductCategory};
use serde::Deserialize;
use uuid::Uuid;

use super::{cached, nullable, page_key, page_limit, path_id, Body, PageQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/categories", get(list).post(create))
        .route("/categories/{id}", get(read).patch(update).delete(remove))
        .route("/categories/{id}/move", post(move_to))
        .route("/categories/{id}/subtree", get(subtree))
        .route("/products/{id}/categories", get(product_categories).post(assign))
        .route("/products/{id}/categories/{category_id}", delete(unassign))
}

/// The taxonomy when a request names none.
const INTERNAL: &str = "internal";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    parent_id: Option<Uuid>,
    name: String,
    /// Absent: derived from the name (`Électroménager` → `electromenager`), made unique.
    slug: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: Option<String>,
    slug: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    /// Required: a category id, or null to make the category a root.
    #[serde(default, deserialize_with = "nullable")]
    parent_id: Option<Option<Uuid>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    parent: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Category>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let category = NewCategory {
        parent_id: b.parent_id,
        name: b.name,
        slug: b.slug,
    };
    let category = s
        .actors
        .stores
        .catalog
        .send(CreateCategory { category }.by(who.origin()))
        .await?;
    Ok((StatusCode::CREATED, Json(category)))
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = path_id("id", &id)?;
    cached(&s, Kind::Categories, &id.to_string(), async {
        Ok(s.actors.stores.catalog.send(GetCategory { id }).await?)
    })
    .await
}

async fn update(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<PatchBody>,
) -> Result<Json<Category>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    let patch = CategoryPatch {
        name: b.name,
        slug: b.slug,
    };
    let category = s
        .actors
        .stores
        .catalog
        .send(UpdateCategory { id, patch }.by(who.origin()))
        .await?;
    Ok(Json(category))
}

/// Moves a category and its subtree under another parent, or to the roots.
async fn move_to(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<MoveBody>,
) -> Result<Json<Category>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    let parent_id = b.parent_id.ok_or_else(|| {
        ApiError::invalid(
            "parent_id",
            "missing: a category id, or null to make the category a root",
        )
    })?;
    let category = s
        .actors
        .stores
        .catalog
        .send(MoveCategory { id, parent_id }.by(who.origin()))
        .await?;
    Ok(Json(category))
}

async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    s.actors
        .stores
        .catalog
        .send(DeleteCategory { id }.by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The roots, or the children of `?parent=`.
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let parent = q.parent.as_deref().map(|p| path_id("parent", p)).transpose()?;
    let limit = page_limit(q.limit)?;
    let prefix = match parent {
        Some(p) => format!("children:{p}"),
        None => "roots".to_owned(),
    };
    let key = page_key(&prefix, limit, q.cursor.as_deref());
    cached(&s, Kind::Categories, &key, async {
        let msg = ListCategories {
            parent,
            limit,
            cursor: q.cursor,
        };
        Ok(s.actors.stores.catalog.send(msg).await?)
    })
    .await
}

/// A category and all its descendants.
async fn subtree(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = path_id("id", &id)?;
    let limit = page_limit(q.limit)?;
    let key = page_key(&format!("subtree:{id}"), limit, q.cursor.as_deref());
    cached(&s, Kind::Categories, &key, async {
        let msg = ListSubtree {
            id,
            limit,
            cursor: q.cursor,
        };
        Ok(s.actors.stores.catalog.send(msg).await?)
    })
    .await
}

// ---- the categories of a product --------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    category_id: Uuid,
    taxonomy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxonomyQuery {
    taxonomy: Option<String>,
}

async fn product_categories(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<ProductCategory>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    Ok(Json(
        s.actors
            .stores
            .catalog
            .send(ProductCategories { product_id })
            .await?,
    ))
}

/// Puts the product in a category of a taxonomy (`internal` unless named); doing it again
/// changes nothing. Answers the product's categories.
async fn assign(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<AssignBody>,
) -> Result<Json<Vec<ProductCategory>>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let msg = AssignCategory {
        product_id,
        category_id: b.category_id,
        taxonomy: b.taxonomy.unwrap_or_else(|| INTERNAL.to_owned()),
    };
    s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(Json(
        s.actors
            .stores
            .catalog
            .send(ProductCategories { product_id })
            .await?,
    ))
}

async fn unassign(
    State(s): State<AppState>,
    who: Principal,
    Path((id, category_id)): Path<(String, String)>,
    Query(q): Query<TaxonomyQuery>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let category_id = path_id("category_id", &category_id)?;
    let msg = UnassignCategory {
        product_id,
        category_id,
        taxonomy: q.taxonomy.unwrap_or_else(|| INTERNAL.to_owned()),
    };
    s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(StatusCode::NO_CONTENT)
}
