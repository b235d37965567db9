//! Suppliers, what each offers (supplier products) and the offers of a product.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
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
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{cached, nullable, page_key, page_limit, path_id, Body, MoneyBody, PageQuery};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::openapi::{Conflict, NotFound};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(list_products, create_product))
        .routes(routes!(read_product, update_product, remove_product))
        .routes(routes!(offers))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SupplierCreate)]
struct CreateBody {
    /// Short stable code used by import profiles; unique.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    code: String,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(max_length = 500)]
    contact: Option<String>,
    /// Absent: `catalog.default_currency` (EUR unless configured).
    default_currency: Option<Currency>,
    #[serde(default = "yes")]
    #[schema(default = true)]
    active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SupplierPatch)]
struct PatchBody {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    code: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 500)]
    contact: Option<Option<String>>,
    default_currency: Option<Currency>,
    active: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only active (true) or inactive (false) suppliers.
    active: Option<bool>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    post,
    path = "/suppliers",
    tag = "suppliers",
    operation_id = "create_supplier",
    summary = "Create a supplier",
    request_body = CreateBody,
    responses((status = 201, description = "The supplier as stored.", body = Supplier), Conflict),
)]
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

#[utoipa::path(
    get,
    path = "/suppliers/{id}",
    tag = "suppliers",
    operation_id = "get_supplier",
    summary = "Get a supplier",
    params(("id" = Uuid, Path, description = "The supplier's id.")),
    responses((status = 200, description = "The supplier.", body = Supplier), NotFound),
)]
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

#[utoipa::path(
    patch,
    path = "/suppliers/{id}",
    tag = "suppliers",
    operation_id = "update_supplier",
    summary = "Update a supplier",
    params(("id" = Uuid, Path, description = "The supplier's id.")),
    request_body = PatchBody,
    responses((status = 200, description = "The supplier as stored.", body = Supplier), NotFound, Conflict),
)]
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

#[utoipa::path(
    delete,
    path = "/suppliers/{id}",
    tag = "suppliers",
    operation_id = "delete_supplier",
    summary = "Delete a supplier and its offers",
    params(("id" = Uuid, Path, description = "The supplier's id.")),
    responses((status = 204, description = "Deleted."), NotFound),
)]
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

#[utoipa::path(
    get,
    path = "/suppliers",
    tag = "suppliers",
    operation_id = "list_suppliers",
    summary = "List suppliers",
    params(ListQuery),
    responses((status = 200, description = "A page of suppliers.", body = Page<Supplier>)),
)]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SupplierProductCreate)]
struct CreateProductBody {
    product_id: Uuid,
    /// The supplier's own reference; unique per supplier.
    #[schema(min_length = 1, max_length = 128)]
    supplier_sku: String,
    cost_price: Option<MoneyBody>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    supplier_stock: Option<i64>,
    #[schema(minimum = 0)]
    lead_time_days: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SupplierProductPatch)]
struct PatchProductBody {
    #[schema(min_length = 1, max_length = 128)]
    supplier_sku: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    cost_price: Option<Option<MoneyBody>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    supplier_stock: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 0)]
    lead_time_days: Option<Option<i32>>,
}

#[utoipa::path(
    post,
    path = "/suppliers/{id}/products",
    tag = "suppliers",
    operation_id = "create_supplier_product",
    summary = "Add an offer of a supplier",
    params(("id" = Uuid, Path, description = "The supplier's id.")),
    request_body = CreateProductBody,
    responses((status = 201, description = "The offer as stored.", body = SupplierProduct), NotFound, Conflict),
)]
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

#[utoipa::path(
    get,
    path = "/suppliers/{id}/products",
    tag = "suppliers",
    operation_id = "list_supplier_products",
    summary = "List the offers of a supplier",
    params(("id" = Uuid, Path, description = "The supplier's id."), PageQuery),
    responses((status = 200, description = "A page of offers.", body = Page<SupplierProduct>), NotFound),
)]
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

#[utoipa::path(
    get,
    path = "/supplier-products/{id}",
    tag = "suppliers",
    operation_id = "get_supplier_product",
    summary = "Get an offer",
    params(("id" = Uuid, Path, description = "The offer's id.")),
    responses((status = 200, description = "The offer.", body = SupplierProduct), NotFound),
)]
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

#[utoipa::path(
    patch,
    path = "/supplier-products/{id}",
    tag = "suppliers",
    operation_id = "update_supplier_product",
    summary = "Update an offer",
    params(("id" = Uuid, Path, description = "The offer's id.")),
    request_body = PatchProductBody,
    responses((status = 200, description = "The offer as stored.", body = SupplierProduct), NotFound, Conflict),
)]
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

#[utoipa::path(
    delete,
    path = "/supplier-products/{id}",
    tag = "suppliers",
    operation_id = "delete_supplier_product",
    summary = "Delete an offer",
    params(("id" = Uuid, Path, description = "The offer's id.")),
    responses((status = 204, description = "Deleted."), NotFound),
)]
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
#[utoipa::path(
    get,
    path = "/products/{id}/offers",
    tag = "suppliers",
    operation_id = "list_product_offers",
    summary = "List the offers of a product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "Every supplier's offer for the product.", body = Vec<SupplierProduct>), NotFound),
)]
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
