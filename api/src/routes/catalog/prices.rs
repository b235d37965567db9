//! Prices of a product and their history. Amounts are decimal strings both ways.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{DeletePrice, ListPrices, PriceHistory, SetPrice};
use pm_domain::{Amount, Currency, Money, Permission};
use pm_storage::catalog::{ChangeSource, Changed, NewPrice, Page, Price, PriceChange, PriceType};
use serde::Deserialize;

use super::{path_id, Body, HistoryQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products/{id}/prices", get(list).put(set))
        .route("/products/{id}/price-history", get(history))
        .route("/prices/{id}", delete(remove))
}

/// One price: identified by product, type, currency and `valid_from`; setting it again
/// replaces its amount and `valid_to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    price_type: PriceType,
    currency: Currency,
    amount: Amount,
    valid_from: Option<DateTime<Utc>>,
    valid_to: Option<DateTime<Utc>>,
}

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
