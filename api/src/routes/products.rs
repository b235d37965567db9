//! `/api/v1/products`: the first slice of the catalog, through the catalog store actor.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pm_actors::store::catalog::{CreateProduct, DeleteProduct, GetProduct, ListProducts, UpdateProduct};
use pm_domain::{Asin, Gtin, ProductStatus};
use pm_storage::catalog::{NewProduct, Page, Product, ProductFilter, ProductPatch};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use pm_domain::Permission;
use pm_storage::cache::Kind;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError};
use crate::extract::{Json as Body, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", get(list).post(create))
        .route("/products/{id}", get(read).patch(update).delete(remove))
}

const MAX_TITLE: usize = 500;
const MAX_TEXT: usize = 20_000;
const MAX_SHORT: usize = 200;
pub const MAX_LIMIT: u32 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    ean: Option<Gtin>,
    sku: Option<String>,
    asin: Option<Asin>,
    title: String,
    description: Option<String>,
    brand: Option<String>,
    #[serde(default)]
    status: ProductStatus,
}

/// Distinguishes a field that is absent (`None`) from one set to null (`Some(None)`).
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "nullable")]
    ean: Option<Option<Gtin>>,
    #[serde(default, deserialize_with = "nullable")]
    sku: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    asin: Option<Option<Asin>>,
    title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    brand: Option<Option<String>>,
    status: Option<ProductStatus>,
}

/// Collects every field error of a body, not just the first.
#[derive(Default)]
struct Checks(Vec<FieldError>);

impl Checks {
    fn text(&mut self, field: &str, v: Option<&str>, max: usize, required: bool) {
        match v {
            Some(s) if s.trim().is_empty() && required => {
                self.0.push(FieldError::new(field, "must not be empty"))
            }
            Some(s) if s.chars().count() > max => self
                .0
                .push(FieldError::new(field, format!("longer than {max} characters"))),
            _ => {}
        }
    }

    fn done(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.0))
        }
    }
}

fn trimmed(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(id).map_err(|_| ApiError::invalid("id", "not a uuid"))
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Product>), ApiError> {
    who.require(Permission::CatalogWrite)?;
    let mut c = Checks::default();
    c.text("title", Some(&b.title), MAX_TITLE, true);
    c.text("sku", b.sku.as_deref(), MAX_SHORT, false);
    c.text("brand", b.brand.as_deref(), MAX_SHORT, false);
    c.text("description", b.description.as_deref(), MAX_TEXT, false);
    c.done()?;
    let new = NewProduct {
        ean: b.ean,
        sku: trimmed(b.sku),
        asin: b.asin,
        title: b.title.trim().to_owned(),
        description: b.description,
        brand: trimmed(b.brand),
        status: b.status,
        ..Default::default()
    };
    let product = s.actors.stores.catalog.send(CreateProduct(new)).await?;
    invalidate(&s, None).await;
    s.audit(&who, "create", "product", Some(product.id.to_string()));
    Ok((StatusCode::CREATED, Json(product)))
}

/// Served from the cache: the serialized product, so that a hit costs no query and no
/// serialization.
async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = parse_id(&id)?;
    let key = id.to_string();
    let bytes = s
        .cache
        .get_or_load(Kind::Products, &key, async {
            let product = s.actors.stores.catalog.send(GetProduct(id)).await?;
            serde_json::to_vec(&product)
                .map(Bytes::from)
                .map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Drops what a write to product `id` made stale: the product itself and every search result.
async fn invalidate(s: &AppState, id: Option<Uuid>) {
    if let Some(id) = id {
        s.cache.invalidate(Kind::Products, &id.to_string()).await;
    }
    s.cache.invalidate_kind(Kind::SearchResults).await;
}

async fn update(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Body(b): Body<PatchBody>,
) -> Result<Json<Product>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = parse_id(&id)?;
    let mut c = Checks::default();
    c.text("title", b.title.as_deref(), MAX_TITLE, true);
    c.text("sku", b.sku.as_ref().and_then(|s| s.as_deref()), MAX_SHORT, false);
    c.text(
        "brand",
        b.brand.as_ref().and_then(|s| s.as_deref()),
        MAX_SHORT,
        false,
    );
    c.text(
        "description",
        b.description.as_ref().and_then(|s| s.as_deref()),
        MAX_TEXT,
        false,
    );
    c.done()?;
    let patch = ProductPatch {
        ean: b.ean,
        sku: b.sku.map(trimmed),
        asin: b.asin,
        title: b.title.map(|t| t.trim().to_owned()),
        description: b.description,
        brand: b.brand.map(trimmed),
        status: b.status,
        ..Default::default()
    };
    let product = s.actors.stores.catalog.send(UpdateProduct(id, patch)).await?;
    invalidate(&s, Some(id)).await;
    s.audit(&who, "update", "product", Some(id.to_string()));
    Ok(Json(product))
}

async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = parse_id(&id)?;
    s.actors.stores.catalog.send(DeleteProduct(id)).await?;
    invalidate(&s, Some(id)).await;
    s.audit(&who, "delete", "product", Some(id.to_string()));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    status: Option<String>,
    ean: Option<String>,
    sku: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Product>>, ApiError> {
    who.require(Permission::CatalogRead)?;
    let mut errors = Vec::new();
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let status = q
        .status
        .as_deref()
        .map(str::parse::<ProductStatus>)
        .transpose()
        .unwrap_or_else(|e| {
            errors.push(FieldError::new("status", e));
            None
        });
    let ean = q.ean.as_deref().map(Gtin::parse).transpose().unwrap_or_else(|e| {
        errors.push(FieldError::new("ean", e));
        None
    });
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let msg = ListProducts {
        filter: ProductFilter {
            status,
            ean,
            sku: q.sku,
            ..Default::default()
        },
        limit,
        cursor: q.cursor,
    };
    Ok(Json(s.actors.stores.catalog.send(msg).await?))
}
