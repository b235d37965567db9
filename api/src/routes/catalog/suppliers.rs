//! Suppliers, what each offers (supplier products) and the offers of a product.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use pm_actors::changes::By;
use pm_actors::store::catalog_entities::{
    CreateSupplier, CreateSupplierProduct, DeleteSupplier, DeleteSupplierProduct, GetSupplier,
    GetSupplierProduct, ListSupplierProducts, ListSuppliers, SupplierOffers, UpdateSupplier,
    UpdateSupplierProduct,
};
use pm_domain::{Currency, Money, Permission};
use pm_storage::cache::Kind;
use pm_storage::catalog::{
    NewSupplier, NewSupplierProduct, Page, Supplier, SupplierPatch, SupplierProduct, SupplierProductPatch,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{cached, nullable, page_key, page_limit, path_id, Body, MoneyBody, PageQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/suppliers", get(list).post(create))
        .route("/suppliers/{id}", get(read).patch(update).delete(remove))
        .route(
            "/suppliers/{id}/products",
            get(list_products).post(create_product),
        )
        .route(
            "/supplier-products/{id}",
            get(read_product).patch(update_product).delete(remove_product),
        )
        .route("/products/{id}/offers", get(offers))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    code: String,
    name: String,
    contact: Option<String>,
    /// Absent: `catalog.default_currency` (EUR unless configured).
    default_currency: Option<Currency>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    code: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    contact: Option<Option<String>>,
    default_currency: Option<Currency>,
    active: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    active: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Supplier>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let supplier = NewSupplier {
        code: b.code,
        name: b.name,
        contact: b.contact,
        default_currency: b.default_currency.unwrap_or(s.settings.catalog.default_currency),
        active: b.active,
    };
    let supplier = s
        .actors
        .stores
        .catalog
        .send(CreateSupplier { supplier }.by(who.origin()))
        .await?;
    Ok((StatusCode::CREATED, Json(supplier)))
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = path_id("id", &id)?;
    cached(&s, Kind::Suppliers, &id.to_string(), async {
        Ok(s.actors.stores.catalog.send(GetSupplier { id }).await?)
    })
    .await
}

async fn update(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<PatchBody>,
) -> Result<Json<Supplier>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    let patch = SupplierPatch {
        code: b.code,
        name: b.name,
        contact: b.contact,
        default_currency: b.default_currency,
        active: b.active,
    };
    let supplier = s
        .actors
        .stores
        .catalog
        .send(UpdateSupplier { id, patch }.by(who.origin()))
        .await?;
    Ok(Json(supplier))
}

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
        .send(DeleteSupplier { id }.by(who.origin()))
        .await?;
    // Its offers went with it, and search filters on them.
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let limit = page_limit(q.limit)?;
    let prefix = format!("list:{:?}", q.active);
    let key = page_key(&prefix, limit, q.cursor.as_deref());
    cached(&s, Kind::Suppliers, &key, async {
        let msg = ListSuppliers {
            active: q.active,
            limit,
            cursor: q.cursor,
        };
        Ok(s.actors.stores.catalog.send(msg).await?)
    })
    .await
}

// ---- supplier products ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProductBody {
    product_id: Uuid,
    supplier_sku: String,
    cost_price: Option<MoneyBody>,
    supplier_stock: Option<i64>,
    lead_time_days: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchProductBody {
    supplier_sku: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    cost_price: Option<Option<MoneyBody>>,
    #[serde(default, deserialize_with = "nullable")]
    supplier_stock: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    lead_time_days: Option<Option<i32>>,
}

async fn create_product(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<CreateProductBody>,
) -> Result<(StatusCode, Json<SupplierProduct>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let supplier_id = path_id("id", &id)?;
    let offer = NewSupplierProduct {
        supplier_id,
        product_id: b.product_id,
        supplier_sku: b.supplier_sku,
        cost_price: b.cost_price.map(Money::from),
        supplier_stock: b.supplier_stock,
        lead_time_days: b.lead_time_days,
        last_seen_import: None,
    };
    let offer = s
        .actors
        .stores
        .catalog
        .send(CreateSupplierProduct { offer }.by(who.origin()))
        .await?;
    Ok((StatusCode::CREATED, Json(without_costs(&who, offer))))
}

async fn list_products(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<SupplierProduct>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let msg = ListSupplierProducts {
        supplier_id: path_id("id", &id)?,
        limit: page_limit(q.limit)?,
        cursor: q.cursor,
    };
    let mut page = s.actors.stores.catalog.send(msg).await?;
    page.items = page.items.into_iter().map(|o| without_costs(&who, o)).collect();
    Ok(Json(page))
}

async fn read_product(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<SupplierProduct>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = path_id("id", &id)?;
    let offer = s.actors.stores.catalog.send(GetSupplierProduct { id }).await?;
    Ok(Json(without_costs(&who, offer)))
}

async fn update_product(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<PatchProductBody>,
) -> Result<Json<SupplierProduct>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    let patch = SupplierProductPatch {
        supplier_sku: b.supplier_sku,
        cost_price: b.cost_price.map(|c| c.map(Money::from)),
        supplier_stock: b.supplier_stock,
        lead_time_days: b.lead_time_days,
        last_seen_import: None,
    };
    let offer = s
        .actors
        .stores
        .catalog
        .send(UpdateSupplierProduct { id, patch }.by(who.origin()))
        .await?;
    Ok(Json(without_costs(&who, offer)))
}

async fn remove_product(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = path_id("id", &id)?;
    s.actors
        .stores
        .catalog
        .send(DeleteSupplierProduct { id }.by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every supplier's offer for one product.
async fn offers(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<SupplierProduct>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let product_id = path_id("id", &id)?;
    let offers = s
        .actors
        .stores
        .catalog
        .send(SupplierOffers { product_id })
        .await?;
    Ok(Json(offers.into_iter().map(|o| without_costs(&who, o)).collect()))
}

/// An offer as `who` may see it: its cost price is null without `catalog:read_costs`.
fn without_costs(who: &Principal, mut offer: SupplierProduct) -> SupplierProduct {
    if !who.can(Permission::CatalogReadCosts) {
        offer.cost_price = None;
    }
    offer
}
