//! Stock of a product per warehouse, and its history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{DeleteStock, ListStocks, SetStock, StockHistory};
use pm_domain::Permission;
use pm_storage::catalog::{ChangeSource, Changed, Page, Stock, StockChange};
use serde::Deserialize;

use super::{path_id, Body, HistoryQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products/{id}/stocks", get(list))
        .route("/products/{id}/stocks/{warehouse}", put(set).delete(remove))
        .route("/products/{id}/stock-history", get(history))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StockBody {
    quantity: i64,
}

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
