//! Stock of a product per warehouse, and its history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{DeleteStock, ListStocks, SetStock, StockHistory};
use pm_domain::Permission;
use pm_storage::catalog::{ChangeSource, Changed, Page, Stock, StockChange};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, Body, HistoryQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::openapi::NotFound;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set, remove))
        .routes(routes!(history))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StockSet)]
struct StockBody {
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    quantity: i64,
}

#[utoipa::path(
    get,
    path = "/products/{id}/stocks",
    tag = "stocks",
    operation_id = "list_stocks",
    summary = "List the stock of a product per warehouse",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The product's stocks.", body = Vec<Stock>), NotFound),
)]
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Stock>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    Ok(Json(
        s.actors.stores.catalog.send(ListStocks { product_id }).await?,
    ))
}

/// Sets the stock in one warehouse; `changed` says whether the quantity changed.
#[utoipa::path(
    put,
    path = "/products/{id}/stocks/{warehouse}",
    tag = "stocks",
    operation_id = "set_stock",
    summary = "Set the stock in a warehouse",
    params(("id" = Uuid, Path, description = "The product's id."), ("warehouse" = String, Path, description = "The warehouse or location code.", pattern = "^[A-Za-z0-9._-]{1,64}$")),
    request_body = StockBody,
    responses((status = 200, description = "The stock as stored; `changed` says whether the quantity changed.", body = Changed<Stock>), NotFound),
)]
async fn set(
    State(s): State<AppState>,
    who: Principal,
    Path((id, warehouse)): Path<(String, String)>,
    Body(b): Body<StockBody>,
) -> Result<Json<Changed<Stock>>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let msg = SetStock {
        product_id,
        warehouse,
        quantity: b.quantity,
        source: ChangeSource::Api,
    };
    let set = s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(Json(set))
}

#[utoipa::path(
    delete,
    path = "/products/{id}/stocks/{warehouse}",
    tag = "stocks",
    operation_id = "delete_stock",
    summary = "Delete the stock of a warehouse",
    params(("id" = Uuid, Path, description = "The product's id."), ("warehouse" = String, Path, description = "The warehouse or location code.", pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 204, description = "Deleted."), NotFound),
)]
async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path((id, warehouse)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let product_id = path_id("id", &id)?;
    let msg = DeleteStock {
        product_id,
        warehouse: warehouse.clone(),
        source: ChangeSource::Api,
    };
    s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stock changes of a product in `[from, to)`, oldest first.
#[utoipa::path(
    get,
    path = "/products/{id}/stock-history",
    tag = "stocks",
    operation_id = "list_stock_history",
    summary = "List the stock changes of a product",
    params(("id" = Uuid, Path, description = "The product's id."), HistoryQuery),
    responses((status = 200, description = "A page of changes, oldest first.", body = Page<StockChange>), NotFound),
)]
async fn history(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Page<StockChange>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    let h = q.check()?;
    let msg = StockHistory {
        product_id,
        from: h.from,
        to: h.to,
        limit: h.limit,
        cursor: h.cursor,
    };
    Ok(Json(s.actors.stores.catalog.send(msg).await?))
}
