//! The category tree, and the categories of a product in each taxonomy.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{
    AssignCategory, CreateCategory, DeleteCategory, GetCategory, ListCategories, ListSubtree, MoveCategory,
    ProductCategories, UnassignCategory, UpdateCategory,
};
use pm_domain::Permission;
use pm_storage::cache::Kind;
use pm_storage::catalog::{Category, CategoryPatch, NewCategory, Page, ProductCategory};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{cached, nullable, page_key, page_limit, path_id, Body, PageQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::openapi::{Conflict, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(move_to))
        .routes(routes!(subtree))
        .routes(routes!(product_categories, assign))
        .routes(routes!(unassign))
}

/// The taxonomy when a request names none.
const INTERNAL: &str = "internal";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CategoryCreate)]
struct CreateBody {
    /// The parent; absent or null for a root.
    parent_id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Unique among the category's siblings. Absent: derived from the name (`Électroménager` →
    /// `electromenager`), with `-2`, `-3`, ... while taken.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 120)]
    slug: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CategoryPatch)]
struct PatchBody {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 120)]
    slug: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CategoryMove)]
struct MoveBody {
    /// Required: a category id, or null to make the category a root.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(required = true, value_type = Option<Uuid>)]
    parent_id: Option<Option<Uuid>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// The children of this category; absent: the roots.
    #[param(value_type = Option<Uuid>)]
    parent: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    post,
    path = "/categories",
    tag = "categories",
    operation_id = "create_category",
    summary = "Create a category",
    request_body = CreateBody,
    responses((status = 201, description = "The category as stored.", body = Category), NotFound, Conflict),
)]
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

#[utoipa::path(
    get,
    path = "/categories/{id}",
    tag = "categories",
    operation_id = "get_category",
    summary = "Get a category",
    params(("id" = Uuid, Path, description = "The category's id.")),
    responses((status = 200, description = "The category.", body = Category), NotFound),
)]
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

#[utoipa::path(
    patch,
    path = "/categories/{id}",
    tag = "categories",
    operation_id = "update_category",
    summary = "Rename a category",
    params(("id" = Uuid, Path, description = "The category's id.")),
    request_body = PatchBody,
    responses((status = 200, description = "The category as stored.", body = Category), NotFound, Conflict),
)]
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
#[utoipa::path(
    post,
    path = "/categories/{id}/move",
    tag = "categories",
    operation_id = "move_category",
    summary = "Move a category and its subtree",
    params(("id" = Uuid, Path, description = "The category's id.")),
    request_body = MoveBody,
    responses((status = 200, description = "The category, moved.", body = Category), NotFound, Conflict),
)]
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

#[utoipa::path(
    delete,
    path = "/categories/{id}",
    tag = "categories",
    operation_id = "delete_category",
    summary = "Delete a category",
    description = "A category with children, or that products still reference, cannot be deleted (409).",
    params(("id" = Uuid, Path, description = "The category's id.")),
    responses((status = 204, description = "Deleted."), NotFound, Conflict),
)]
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
#[utoipa::path(
    get,
    path = "/categories",
    tag = "categories",
    operation_id = "list_categories",
    summary = "List the roots, or the children of a category",
    params(ListQuery),
    responses((status = 200, description = "A page of categories.", body = Page<Category>), NotFound),
)]
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
#[utoipa::path(
    get,
    path = "/categories/{id}/subtree",
    tag = "categories",
    operation_id = "list_category_subtree",
    summary = "List a category and all its descendants",
    params(("id" = Uuid, Path, description = "The category's id."), PageQuery),
    responses((status = 200, description = "A page of the subtree.", body = Page<Category>), NotFound),
)]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CategoryAssign)]
struct AssignBody {
    category_id: Uuid,
    /// The taxonomy; default `internal`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,32}$")]
    taxonomy: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TaxonomyQuery {
    /// The taxonomy; default `internal`.
    #[param(pattern = "^[A-Za-z0-9._-]{1,32}$")]
    taxonomy: Option<String>,
}

#[utoipa::path(
    get,
    path = "/products/{id}/categories",
    tag = "categories",
    operation_id = "list_product_categories",
    summary = "List the categories of a product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The product's categories in every taxonomy.", body = Vec<ProductCategory>), NotFound),
)]
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
#[utoipa::path(
    post,
    path = "/products/{id}/categories",
    tag = "categories",
    operation_id = "assign_product_category",
    summary = "Put a product in a category",
    params(("id" = Uuid, Path, description = "The product's id.")),
    request_body = AssignBody,
    responses((status = 200, description = "The product's categories.", body = Vec<ProductCategory>), NotFound, Conflict),
)]
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

#[utoipa::path(
    delete,
    path = "/products/{id}/categories/{category_id}",
    tag = "categories",
    operation_id = "unassign_product_category",
    summary = "Take a product out of a category",
    params(("id" = Uuid, Path, description = "The product's id."), ("category_id" = Uuid, Path, description = "The category's id."), TaxonomyQuery),
    responses((status = 204, description = "Done."), NotFound),
)]
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
