//! Prices of a product and their history. Amounts are decimal strings both ways.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{DeletePrice, ListPrices, PriceHistory, SetPrice};
use pm_domain::{Amount, Currency, Money, Permission};
use pm_storage::catalog::{ChangeSource, Changed, NewPrice, Page, Price, PriceChange, PriceType};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, Body, HistoryQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::openapi::{Conflict, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, set))
        .routes(routes!(history))
        .routes(routes!(remove))
}

/// One price: identified by product, type, currency and `valid_from`; setting it again
/// replaces its amount and `valid_to`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PriceSet)]
struct PriceBody {
    price_type: PriceType,
    currency: Currency,
    amount: Amount,
    valid_from: Option<DateTime<Utc>>,
    valid_to: Option<DateTime<Utc>>,
}

#[utoipa::path(
    get,
    path = "/products/{id}/prices",
    tag = "prices",
    operation_id = "list_prices",
    summary = "List the prices of a product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The product's prices.", body = Vec<Price>), NotFound),
)]
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Price>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    let mut prices = s.actors.stores.catalog.send(ListPrices { product_id }).await?;
    if !who.can(Permission::CatalogReadCosts) {
        prices.retain(|p| p.price_type != PriceType::Cost);
    }
    Ok(Json(prices))
}

/// Sets one price. `changed` in the answer says whether the amount changed (and so whether a
/// history row was written).
#[utoipa::path(
    put,
    path = "/products/{id}/prices",
    tag = "prices",
    operation_id = "set_price",
    summary = "Set a price",
    description = "A price is identified by its type, currency and `valid_from`; setting it again replaces its amount and `valid_to`. The amount must not be negative, nor finer than the currency's minor units.",
    params(("id" = Uuid, Path, description = "The product's id.")),
    request_body = PriceBody,
    responses((status = 200, description = "The price as stored; `changed` says whether the amount changed.", body = Changed<Price>), NotFound, Conflict),
)]
async fn set(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<PriceBody>,
) -> Result<Json<Changed<Price>>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    if b.price_type == PriceType::Cost {
        // The answer and the history show it: setting a cost means seeing costs.
        who.require(Permission::CatalogReadCosts)?;
    }
    let product_id = path_id("id", &id)?;
    let price = NewPrice {
        price_type: b.price_type,
        price: Money::new(b.amount, b.currency),
        valid_from: b.valid_from,
        valid_to: b.valid_to,
    };
    let msg = SetPrice {
        product_id,
        price,
        source: ChangeSource::Api,
    };
    let set = s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(Json(set))
}

#[utoipa::path(
    delete,
    path = "/prices/{id}",
    tag = "prices",
    operation_id = "delete_price",
    summary = "Delete a price",
    params(("id" = Uuid, Path, description = "The price's id.")),
    responses((status = 204, description = "Deleted."), NotFound),
)]
async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    let msg = DeletePrice {
        id,
        source: ChangeSource::Api,
    };
    s.actors.stores.catalog.send(msg.by(who.origin())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The price changes of a product in `[from, to)`, oldest first.
#[utoipa::path(
    get,
    path = "/products/{id}/price-history",
    tag = "prices",
    operation_id = "list_price_history",
    summary = "List the price changes of a product",
    params(("id" = Uuid, Path, description = "The product's id."), HistoryQuery),
    responses((status = 200, description = "A page of changes, oldest first.", body = Page<PriceChange>), NotFound),
)]
async fn history(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Page<PriceChange>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    let h = q.check()?;
    let msg = PriceHistory {
        product_id,
        from: h.from,
        to: h.to,
        limit: h.limit,
        cursor: h.cursor,
        with_costs: who.can(Permission::CatalogReadCosts),
    };
    Ok(Json(s.actors.stores.catalog.send(msg).await?))
}
