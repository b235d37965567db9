//! Brands: the curated list supplier spellings map to.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{CreateBrand, DeleteBrand, GetBrand, ListBrands, UpdateBrand};
use pm_domain::Permission;
use pm_storage::cache::Kind;
use pm_storage::catalog::{Brand, BrandPatch, NewBrand, Page};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{cached, page_key, page_limit, path_id, Body, PageQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::openapi::{Conflict, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BrandCreate)]
struct CreateBody {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Unique among brands. Absent: derived from the name (`Électroménager` →
    /// `electromenager`), with `-2`, `-3`, ... while taken.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 120)]
    slug: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BrandPatch)]
struct PatchBody {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 120)]
    slug: Option<String>,
}

#[utoipa::path(
    post,
    path = "/brands",
    tag = "brands",
    operation_id = "create_brand",
    summary = "Create a brand",
    request_body = CreateBody,
    responses((status = 201, description = "The brand as stored.", body = Brand), Conflict),
)]
async fn create(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Brand>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let brand = NewBrand {
        name: b.name,
        slug: b.slug,
    };
    let brand = s
        .actors
        .stores
        .catalog
        .send(CreateBrand { brand }.by(who.origin()))
        .await?;
    Ok((StatusCode::CREATED, Json(brand)))
}

#[utoipa::path(
    get,
    path = "/brands/{id}",
    tag = "brands",
    operation_id = "get_brand",
    summary = "Get a brand",
    params(("id" = Uuid, Path, description = "The brand's id.")),
    responses((status = 200, description = "The brand.", body = Brand), NotFound),
)]
async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = path_id("id", &id)?;
    cached(&s, Kind::Brands, &id.to_string(), async {
        Ok(s.actors.stores.catalog.send(GetBrand { id }).await?)
    })
    .await
}

#[utoipa::path(
    patch,
    path = "/brands/{id}",
    tag = "brands",
    operation_id = "update_brand",
    summary = "Update a brand",
    params(("id" = Uuid, Path, description = "The brand's id.")),
    request_body = PatchBody,
    responses((status = 200, description = "The brand as stored.", body = Brand), NotFound, Conflict),
)]
async fn update(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<PatchBody>,
) -> Result<Json<Brand>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    let patch = BrandPatch {
        name: b.name,
        slug: b.slug,
    };
    let brand = s
        .actors
        .stores
        .catalog
        .send(UpdateBrand { id, patch }.by(who.origin()))
        .await?;
    Ok(Json(brand))
}

#[utoipa::path(
    delete,
    path = "/brands/{id}",
    tag = "brands",
    operation_id = "delete_brand",
    summary = "Delete a brand",
    description = "A brand products still reference cannot be deleted (409).",
    params(("id" = Uuid, Path, description = "The brand's id.")),
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
        .send(DeleteBrand { id }.by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/brands",
    tag = "brands",
    operation_id = "list_brands",
    summary = "List brands",
    params(PageQuery),
    responses((status = 200, description = "A page of brands.", body = Page<Brand>)),
)]
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let limit = page_limit(q.limit)?;
    let key = page_key("list", limit, q.cursor.as_deref());
    cached(&s, Kind::Brands, &key, async {
        let msg = ListBrands {
            limit,
            cursor: q.cursor,
        };
        Ok(s.actors.stores.catalog.send(msg).await?)
    })
    .await
}
