//! Variants: a product as one combination of axis values of a parent product.

use pm_actors::changes::By;
use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pm_actors::store::catalog_entities::{GetVariant, ListVariants, RemoveVariant, SetVariant};
use pm_domain::Permission;
use pm_storage::catalog::Variant;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{path_id, Body};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::openapi::{Conflict, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read, set, remove))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = VariantSet)]
struct VariantBody {
    parent_id: Uuid,
    /// Axis to value: `{"colour": "red", "size": "M"}`.
    axes: BTreeMap<String, String>,
}

/// The variants of a parent product.
#[utoipa::path(
    get,
    path = "/products/{id}/variants",
    tag = "variants",
    operation_id = "list_variants",
    summary = "List the variants of a parent product",
    params(("id" = Uuid, Path, description = "The parent product's id.")),
    responses((status = 200, description = "The variants.", body = Vec<Variant>), NotFound),
)]
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Variant>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let parent_id = path_id("id", &id)?;
    Ok(Json(
        s.actors.stores.catalog.send(ListVariants { parent_id }).await?,
    ))
}

/// The variant record of a product: its parent and axis values; 404 when it is no variant.
#[utoipa::path(
    get,
    path = "/products/{id}/variant",
    tag = "variants",
    operation_id = "get_variant",
    summary = "Get the variant record of a product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "Its parent and axis values.", body = Variant), NotFound),
)]
async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Variant>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    Ok(Json(
        s.actors.stores.catalog.send(GetVariant { product_id }).await?,
    ))
}

/// Makes the product a variant of `parent_id`, or changes its parent or axis values.
#[utoipa::path(
    put,
    path = "/products/{id}/variant",
    tag = "variants",
    operation_id = "set_variant",
    summary = "Make a product a variant, or change its parent or axes",
    params(("id" = Uuid, Path, description = "The product's id.")),
    request_body = VariantBody,
    responses((status = 200, description = "The variant as stored.", body = Variant), NotFound, Conflict),
)]
async fn set(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<VariantBody>,
) -> Result<Json<Variant>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let msg = SetVariant {
        product_id,
        parent_id: b.parent_id,
        axes: b.axes,
    };
    let variant = s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(Json(variant))
}

/// Makes a variant a product on its own again.
#[utoipa::path(
    delete,
    path = "/products/{id}/variant",
    tag = "variants",
    operation_id = "delete_variant",
    summary = "Make a variant a product on its own again",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 204, description = "Done."), NotFound),
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
        .send(RemoveVariant { product_id }.by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
