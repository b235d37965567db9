//! Bundles: a product sold as a set of other products. The storage makes a bundle in one
//! transaction and changes it an item at a time, so the routes do too: `POST` creates the
//! bundle with its items, `PUT`/`DELETE .../bundle/items/{product_id}` change one item.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{
    CreateBundle, DeleteBundle, GetBundle, RemoveBundleItem, SetBundleItem,
};
use pm_domain::Permission;
use pm_storage::catalog::{Bundle, BundleItem};
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
        .routes(routes!(read, create, remove))
        .routes(routes!(set_item, remove_item))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BundleItemInput)]
struct ItemBody {
    product_id: Uuid,
    #[schema(minimum = 1)]
    quantity: i32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BundleCreate)]
struct BundleBody {
    #[serde(default)]
    items: Vec<ItemBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BundleQuantity)]
struct QuantityBody {
    #[schema(minimum = 1)]
    quantity: i32,
}

#[utoipa::path(
    get,
    path = "/products/{id}/bundle",
    tag = "bundles",
    operation_id = "get_bundle",
    summary = "Get the bundle of a product",
    params(("id" = Uuid, Path, description = "The bundle product's id.")),
    responses((status = 200, description = "The bundle.", body = Bundle), NotFound),
)]
async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Bundle>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    Ok(Json(
        s.actors.stores.catalog.send(GetBundle { product_id }).await?,
    ))
}

/// Makes the product a bundle of `items`; 409 when it already is one.
#[utoipa::path(
    post,
    path = "/products/{id}/bundle",
    tag = "bundles",
    operation_id = "create_bundle",
    summary = "Make a product a bundle",
    params(("id" = Uuid, Path, description = "The product's id.")),
    request_body = BundleBody,
    responses((status = 201, description = "The bundle as stored.", body = Bundle), NotFound, Conflict),
)]
async fn create(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<BundleBody>,
) -> Result<(StatusCode, Json<Bundle>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let items = b
        .items
        .into_iter()
        .map(|i| BundleItem {
            product_id: i.product_id,
            quantity: i.quantity,
        })
        .collect();
    let bundle = s
        .actors
        .stores
        .catalog
        .send(CreateBundle { product_id, items }.by(who.origin()))
        .await?;
    Ok((StatusCode::CREATED, Json(bundle)))
}

/// Makes the bundle a plain product again.
#[utoipa::path(
    delete,
    path = "/products/{id}/bundle",
    tag = "bundles",
    operation_id = "delete_bundle",
    summary = "Make a bundle a plain product again",
    params(("id" = Uuid, Path, description = "The bundle product's id.")),
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
        .send(DeleteBundle { product_id }.by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds an item or changes its quantity; answers the bundle.
#[utoipa::path(
    put,
    path = "/products/{id}/bundle/items/{product_id}",
    tag = "bundles",
    operation_id = "set_bundle_item",
    summary = "Add an item or change its quantity",
    params(("id" = Uuid, Path, description = "The bundle product's id."), ("product_id" = Uuid, Path, description = "The item's product id.")),
    request_body = QuantityBody,
    responses((status = 200, description = "The bundle.", body = Bundle), NotFound, Conflict),
)]
async fn set_item(
    State(s): State<AppState>,
    who: Principal,
    Path((id, item)): Path<(String, String)>,
    Body(b): Body<QuantityBody>,
) -> Result<Json<Bundle>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let bundle_id = path_id("id", &id)?;
    let item = BundleItem {
        product_id: path_id("product_id", &item)?,
        quantity: b.quantity,
    };
    let bundle = s
        .actors
        .stores
        .catalog
        .send(SetBundleItem { bundle_id, item }.by(who.origin()))
        .await?;
    Ok(Json(bundle))
}

/// Takes an item out; answers the bundle.
#[utoipa::path(
    delete,
    path = "/products/{id}/bundle/items/{product_id}",
    tag = "bundles",
    operation_id = "delete_bundle_item",
    summary = "Take an item out of a bundle",
    params(("id" = Uuid, Path, description = "The bundle product's id."), ("product_id" = Uuid, Path, description = "The item's product id.")),
    responses((status = 200, description = "The bundle.", body = Bundle), NotFound, Conflict),
)]
async fn remove_item(
    State(s): State<AppState>,
    who: Principal,
    Path((id, item)): Path<(String, String)>,
) -> Result<Json<Bundle>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let bundle_id = path_id("id", &id)?;
    let product_id = path_id("product_id", &item)?;
    let bundle = s
        .actors
        .stores
        .catalog
        .send(
            RemoveBundleItem {
                bundle_id,
                product_id,
            }
            .by(who.origin()),
        )
        .await?;
    Ok(Json(bundle))
}
