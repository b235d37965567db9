//! Variants: a product as one combination of axis values of a parent product.

use pm_actors::changes::By;
use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pm_actors::store::catalog_entities::{GetVariant, ListVariants, RemoveVariant, SetVariant};
use pm_domain::Permission;
use pm_storage::catalog::Variant;
use serde::Deserialize;
use uuid::Uuid;

use super::{path_id, Body};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products/{id}/variants", get(list))
        .route("/products/{id}/variant", get(read).put(set).delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantBody {
    parent_id: Uuid,
    /// Axis to value: `{"colour": "red", "size": "M"}`.
    axes: BTreeMap<String, String>,
}

/// The variants of a parent product.
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
