//! Search-engine fields of a product, and the product of a URL slug.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{DeleteSeo, GetSeo, SeoBySlug, SetSeo};
use pm_domain::Permission;
use pm_storage::catalog::{NewSeo, Seo};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, Body};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::openapi::{Conflict, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read, set, remove))
        .routes(routes!(by_slug))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SeoSet)]
struct SeoBody {
    /// Unique among products.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 120)]
    slug: String,
    #[schema(max_length = 300)]
    meta_title: Option<String>,
    #[schema(max_length = 1000)]
    meta_description: Option<String>,
}

#[utoipa::path(
    get,
    path = "/products/{id}/seo",
    tag = "seo",
    operation_id = "get_seo",
    summary = "Get the SEO fields of a product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The SEO fields.", body = Seo), NotFound),
)]
async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Seo>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    Ok(Json(s.actors.stores.catalog.send(GetSeo { product_id }).await?))
}

/// Sets (creates or replaces) the SEO fields; a slug another product uses is a conflict.
#[utoipa::path(
    put,
    path = "/products/{id}/seo",
    tag = "seo",
    operation_id = "set_seo",
    summary = "Set the SEO fields of a product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    request_body = SeoBody,
    responses((status = 200, description = "The SEO fields as stored.", body = Seo), NotFound, Conflict),
)]
async fn set(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<SeoBody>,
) -> Result<Json<Seo>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let seo = NewSeo {
        slug: b.slug,
        meta_title: b.meta_title,
        meta_description: b.meta_description,
    };
    let seo = s
        .actors
        .stores
        .catalog
        .send(SetSeo { product_id, seo }.by(who.origin()))
        .await?;
    Ok(Json(seo))
}

#[utoipa::path(
    delete,
    path = "/products/{id}/seo",
    tag = "seo",
    operation_id = "delete_seo",
    summary = "Delete the SEO fields of a product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 204, description = "Deleted."), NotFound),
)]
async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    s.actors
        .stores
        .catalog
        .send(DeleteSeo { product_id }.by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The SEO fields (and so the product id) of a slug.
#[utoipa::path(
    get,
    path = "/seo/{slug}",
    tag = "seo",
    operation_id = "get_seo_by_slug",
    summary = "Find the product of a URL slug",
    params(("slug" = String, Path, description = "The slug.")),
    responses((status = 200, description = "The SEO fields, with the product id.", body = Seo), NotFound),
)]
async fn by_slug(
    State(s): State<AppState>,
    who: Principal,
    Path(slug): Path<String>,
) -> Result<Json<Seo>, ApiError> {
    who.require(Permission::CatalogRead)?;
    Ok(Json(s.actors.stores.catalog.send(SeoBySlug { slug }).await?))
}
