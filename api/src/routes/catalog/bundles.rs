//! Bundles: a product sold as a set of other products. The storage makes a bundle in one
//! transaction and changes it an item at a time, so the routes do too: `POST` creates the
//! bundle with its items, `PUT`/`DELETE .../bundle/items/{product_id}` change one item.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{
    CreateBundle, DeleteBundle, GetBundle, RemoveBundleItem, SetBundleItem,
};
use pm_domain::Permission;
use pm_storage::catalog::{Bundle, BundleItem};
use serde::Deserialize;
use uuid::Uuid;

use super::{path_id, Body};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products/{id}/bundle", get(read).post(create).delete(remove))
        .route(
            "/products/{id}/bundle/items/{product_id}",
            put(set_item).delete(remove_item),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    product_id: Uuid,
    quantity: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleBody {
    #[serde(default)]
    items: Vec<ItemBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityBody {
    quantity: i32,
}

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
