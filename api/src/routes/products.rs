//! `/api/v1/products`: products through the catalog store actor, reads through the cache.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use pm_actors::changes::By;
use pm_actors::store::catalog::{
    CountProducts, CreateProduct, DeleteProduct, GetProduct, ListProducts, ListTrash, RestoreProduct,
    SearchProducts, UpdateProduct, UpsertProducts,
};
use pm_domain::{text, Amount, Asin, Currency, Gtin, Permission, ProductStatus, TextKind};
use pm_storage::cache::Kind;
use pm_storage::catalog::{
    Attributes, NewProduct, Page, PriceRange, PriceType, Product, ProductFilter, ProductPatch, ProductSort,
    SearchHit, Total, UpsertResult, MAX_UPSERT_BATCH,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError};
use crate::etag;
use crate::extract::{bounded_limit, nullable, page_limit, Json as Body, Query, DEFAULT_PAGE};
use crate::openapi::{BadRequest, Conflict, NotFound, PreconditionFailed};
use crate::AppState;

/// Bodies of bulk upserts may be larger than others: 1,000 products at the maximum sizes of
/// their text fields (a 500-character title, a 20,000-character description, ...) in JSON.
const BULK_BODY_LIMIT: usize = 32 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(
            routes!(bulk).layer(
                tower::ServiceBuilder::new()
                    .layer(axum::Extension(crate::extract::BodyLimit(BULK_BODY_LIMIT)))
                    .layer(DefaultBodyLimit::max(BULK_BODY_LIMIT)),
            ),
        )
        .routes(routes!(search))
        .routes(routes!(trash))
        .routes(routes!(read, update, remove))
        .routes(routes!(restore))
}

const MAX_TITLE: usize = 500;
const MAX_TEXT: usize = 20_000;
/// Keys of a product's free `attributes` map.
const MAX_ATTRIBUTES: usize = 500;
const MAX_SHORT: usize = 200;
const MAX_SEARCH_LIMIT: u32 = 100;

/// A new product. Texts may not hold control characters (the description may hold line
/// breaks and tabs); the title needs a visible character.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProductCreate)]
struct CreateBody {
    ean: Option<Gtin>,
    #[schema(max_length = 200)]
    sku: Option<String>,
    asin: Option<Asin>,
    #[schema(min_length = 1, max_length = 500)]
    title: String,
    #[schema(max_length = 20000)]
    description: Option<String>,
    /// The brand as the supplier spells it.
    #[schema(max_length = 200)]
    brand: Option<String>,
    /// A curated brand; it must exist.
    brand_id: Option<Uuid>,
    /// A category; it must exist.
    primary_category_id: Option<Uuid>,
    #[serde(default)]
    status: ProductStatus,
    #[schema(minimum = 0)]
    weight_grams: Option<i32>,
    #[schema(minimum = 0)]
    length_mm: Option<i32>,
    #[schema(minimum = 0)]
    width_mm: Option<i32>,
    #[schema(minimum = 0)]
    height_mm: Option<i32>,
    /// Free attributes: at most 500 keys of at most 100 characters; strings at most 10,000
    /// characters, nested at most 16 levels.
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: Attributes,
}

/// A partial update: an absent field is left alone, `null` clears a field that may be empty.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProductPatch)]
struct PatchBody {
    #[serde(default, deserialize_with = "nullable")]
    ean: Option<Option<Gtin>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 200)]
    sku: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    asin: Option<Option<Asin>>,
    #[schema(min_length = 1, max_length = 500)]
    title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 20000)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 200)]
    brand: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    brand_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    primary_category_id: Option<Option<Uuid>>,
    status: Option<ProductStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 0)]
    weight_grams: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 0)]
    length_mm: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 0)]
    width_mm: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 0)]
    height_mm: Option<Option<i32>>,
    /// Replaces all the free attributes.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Attributes>,
}

/// Collects every field error of a body, not just the first.
#[derive(Default)]
struct Checks(Vec<FieldError>);

impl Checks {
    /// The text rule (`pm_domain::text`): single-line unless the field is `description`.
    fn text(&mut self, field: &str, v: Option<&str>, max: usize, required: bool) {
        let kind = if field == "description" {
            TextKind::Multiline
        } else {
            TextKind::Line
        };
        let Some(s) = v else { return };
        let r = if required {
            text::check_required(s.trim(), kind, max)
        } else {
            text::check(s, kind, max)
        };
        if let Err(e) = r {
            self.0.push(FieldError::new(field, e));
        }
    }

    /// Free attributes: at most [`MAX_ATTRIBUTES`] keys, every key and string the text rule.
    fn attributes(&mut self, a: Option<&Attributes>) {
        let Some(a) = a else { return };
        if a.len() > MAX_ATTRIBUTES {
            self.0.push(FieldError::new(
                "attributes",
                format!("at most {MAX_ATTRIBUTES} keys, found {}", a.len()),
            ));
            return;
        }
        for (k, v) in a {
            if let Err(e) = text::check_required(k, TextKind::Line, 100) {
                self.0
                    .push(FieldError::new(format!("attributes.{k}"), format!("key {e}")));
            } else if let Err(e) = crate::extract::check_json_text(v, 10_000) {
                self.0.push(FieldError::new(format!("attributes.{k}"), e));
            }
        }
    }

    fn measure(&mut self, field: &str, v: Option<i32>) {
        if v.is_some_and(|v| v < 0) {
            self.0.push(FieldError::new(field, "must not be negative"));
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

impl CreateBody {
    fn check(&self) -> Result<(), ApiError> {
        let mut c = Checks::default();
        c.text("title", Some(&self.title), MAX_TITLE, true);
        c.text("sku", self.sku.as_deref(), MAX_SHORT, false);
        c.text("brand", self.brand.as_deref(), MAX_SHORT, false);
        c.text("description", self.description.as_deref(), MAX_TEXT, false);
        c.attributes(Some(&self.attributes));
        for (f, v) in [
            ("weight_grams", self.weight_grams),
            ("length_mm", self.length_mm),
            ("width_mm", self.width_mm),
            ("height_mm", self.height_mm),
        ] {
            c.measure(f, v);
        }
        c.done()
    }

    fn into_new(self) -> NewProduct {
        NewProduct {
            ean: self.ean,
            sku: trimmed(self.sku),
            asin: self.asin,
            title: self.title.trim().to_owned(),
            description: self.description,
            brand: trimmed(self.brand),
            brand_id: self.brand_id,
            primary_category_id: self.primary_category_id,
            status: self.status,
            weight_grams: self.weight_grams,
            length_mm: self.length_mm,
            width_mm: self.width_mm,
            height_mm: self.height_mm,
            attributes: self.attributes,
        }
    }
}

#[utoipa::path(
    post,
    path = "/products",
    tag = "products",
    operation_id = "create_product",
    summary = "Create a product",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The product as stored.", body = Product,
            headers(("ETag" = String, description = "The product's version, quoted: `\"1\"`."))),
        Conflict,
    ),
)]
async fn create(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<CreateBody>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogWrite)?;
    b.check()?;
    let product = s
        .actors
        .stores
        .catalog
        .send(CreateProduct(b.into_new()).by(who.origin()))
        .await?;
    Ok(tagged(StatusCode::CREATED, product))
}

fn json_bytes(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn to_bytes<T: Serialize>(v: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Served from the cache: the serialized product, so that a hit costs no query and no
/// serialization. Its version is its ETag; `If-None-Match` with it answers 304.
#[utoipa::path(
    get,
    path = "/products/{id}",
    tag = "products",
    operation_id = "get_product",
    summary = "Get a product",
    description = "A product in the trash is not found here; see the trash. The `ETag` is the \
        product's version; `If-None-Match` with it answers 304 while the product is unchanged \
        (a change of its images, or the expiry of `main_image`'s links, is not a new version).",
    params(
        ("id" = Uuid, Path, description = "The product's id."),
        ("If-None-Match" = Option<String>, Header, description = "An ETag read before: 304 while it is current."),
    ),
    responses(
        (status = 200, description = "The product, with its main image.", body = ProductView,
            headers(("ETag" = String, description = "The product's version, quoted: `\"3\"`."))),
        (status = 304, description = "The copy the client holds is current.",
            headers(("ETag" = String, description = "The product's version."))),
        NotFound,
    ),
)]
async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    let id = parse_id(&id)?;
    let key = id.to_string();
    let bytes = s
        .cache
        .get_or_load(Kind::Products, &key, async {
            to_bytes(&s.actors.stores.catalog.send(GetProduct(id)).await?)
        })
        .await?;
    /// Only the version of the cached bytes is read back; serde skips the rest.
    #[derive(Deserialize)]
    struct Versioned {
        version: i64,
    }
    let Ok(Versioned { version }) = serde_json::from_slice::<Versioned>(&bytes) else {
        // An entry cached by a version before products had versions: served without a tag.
        return Ok(json_bytes(with_main_image(&s, id, bytes).await?));
    };
    let tag = etag::of_version(version);
    if etag::none_match_hits(&headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let mut resp = json_bytes(with_main_image(&s, id, bytes).await?);
    if let Ok(v) = HeaderValue::from_str(&tag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// The cached product's bytes with its `main_image` added. The cache holds the product alone:
/// its images change without a new product version and their links expire, so they are read
/// (one query) and signed at each answer, never cached.
async fn with_main_image(s: &AppState, id: Uuid, bytes: Bytes) -> Result<Bytes, ApiError> {
    let main = super::media::main_images(s, vec![id]).await?.remove(&id);
    let main = serde_json::to_vec(&main).map_err(|e| ApiError::Internal(e.to_string()))?;
    // The bytes are a serialized product: a JSON object with fields, ending in `}`.
    match bytes.strip_suffix(b"}") {
        Some(head) if head.len() > 1 => {
            let mut out = Vec::with_capacity(bytes.len() + main.len() + 16);
            out.extend_from_slice(head);
            out.extend_from_slice(b",\"main_image\":");
            out.extend_from_slice(&main);
            out.push(b'}');
            Ok(Bytes::from(out))
        }
        _ => Err(ApiError::Internal("a cached product is not a JSON object".into())),
    }
}

/// A product with its main image, as reads answer it.
#[derive(Serialize, ToSchema)]
struct ProductView {
    #[serde(flatten)]
    product: Product,
    /// The main image, with download links; null when the product has no image.
    main_image: Option<super::media::MainImageView>,
}

/// A product answer with its ETag.
fn tagged(status: StatusCode, p: Product) -> Response {
    let tag = etag::of_version(p.version);
    (status, [(header::ETAG, tag)], Json(p)).into_response()
}

/// The version a conditional write names, from `If-Match`: `None` for an unconditional one
/// (no header, or `*`, for which the product's existence suffices). A list of several tags is
/// checked against the current version here; one the product is not at is a 412 at once.
async fn precondition(s: &AppState, id: Uuid, headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let m = etag::IfMatch::from_headers(headers)?;
    match &m {
        etag::IfMatch::Any | etag::IfMatch::Exists => Ok(None),
        _ if m.single().is_some() => Ok(m.single()),
        _ => {
            let current = s.actors.stores.catalog.send(GetProduct(id)).await?.version;
            if m.allows(current) {
                Ok(Some(current))
            } else {
                Err(ApiError::PreconditionFailed {
                    detail: format!("product {id} is at version {current}, which if-match does not name"),
                    etag: Some(etag::of_version(current)),
                })
            }
        }
    }
}

/// A partial update; `If-Match` with the ETag read makes it fail (412) instead of
/// overwriting a change made in between.
#[utoipa::path(
    patch,
    path = "/products/{id}",
    tag = "products",
    operation_id = "update_product",
    summary = "Update a product",
    description = "With `If-Match` (the ETag read), the write happens only if nobody wrote in \
        between; otherwise 412 with the current ETag.",
    params(
        ("id" = Uuid, Path, description = "The product's id."),
        ("If-Match" = Option<String>, Header, description = "ETags (`\"3\"`) or `*`: write only at one of these versions."),
    ),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The product as stored.", body = Product,
            headers(("ETag" = String, description = "The new version."))),
        BadRequest, PreconditionFailed, NotFound, Conflict,
    ),
)]
async fn update(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(b): Body<PatchBody>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = parse_id(&id)?;
    let if_version = precondition(&s, id, &headers).await?;
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
    for (f, v) in [
        ("weight_grams", b.weight_grams),
        ("length_mm", b.length_mm),
        ("width_mm", b.width_mm),
        ("height_mm", b.height_mm),
    ] {
        c.measure(f, v.flatten());
    }
    c.attributes(b.attributes.as_ref());
    c.done()?;
    let patch = ProductPatch {
        ean: b.ean,
        sku: b.sku.map(trimmed),
        asin: b.asin,
        title: b.title.map(|t| t.trim().to_owned()),
        description: b.description,
        brand: b.brand.map(trimmed),
        brand_id: b.brand_id,
        primary_category_id: b.primary_category_id,
        status: b.status,
        weight_grams: b.weight_grams,
        length_mm: b.length_mm,
        width_mm: b.width_mm,
        height_mm: b.height_mm,
        attributes: b.attributes,
    };
    let product = s
        .actors
        .stores
        .catalog
        .send(UpdateProduct(id, patch, if_version).by(who.origin()))
        .await?;
    Ok(tagged(StatusCode::OK, product))
}

/// Moves the product to the trash; it is purged after `catalog.trash_retention_days`.
#[utoipa::path(
    delete,
    path = "/products/{id}",
    tag = "products",
    operation_id = "delete_product",
    summary = "Move a product to the trash",
    description = "With `If-Match` (the ETag read), only if nobody wrote in between; \
        otherwise 412 with the current ETag.",
    params(
        ("id" = Uuid, Path, description = "The product's id."),
        ("If-Match" = Option<String>, Header, description = "ETags (`\"3\"`) or `*`: delete only at one of these versions."),
    ),
    responses((status = 204, description = "In the trash."), BadRequest, PreconditionFailed, NotFound),
)]
async fn remove(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = parse_id(&id)?;
    let if_version = precondition(&s, id, &headers).await?;
    s.actors
        .stores
        .catalog
        .send(DeleteProduct(id, if_version).by(who.origin()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/products/{id}/restore",
    tag = "products",
    operation_id = "restore_product",
    summary = "Restore a product from the trash",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses((status = 200, description = "The product, live again.", body = Product), NotFound, Conflict),
)]
async fn restore(
    State(s): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Product>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    let id = parse_id(&id)?;
    let product = s
        .actors
        .stores
        .catalog
        .send(RestoreProduct(id).by(who.origin()))
        .await?;
    Ok(Json(product))
}

/// Filters shared by the list, the trash and search.
#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct FilterQuery {
    #[param(value_type = Option<ProductStatus>)]
    status: Option<String>,
    /// Any spelling of the GTIN (8, 12, 13 or 14 digits).
    #[param(value_type = Option<Gtin>)]
    ean: Option<String>,
    sku: Option<String>,
    #[param(value_type = Option<Asin>)]
    asin: Option<String>,
    /// Booleans are read as text: flattened query structs see every value as a string.
    #[param(value_type = Option<bool>)]
    has_asin: Option<String>,
    /// Products a supplier offers.
    supplier_id: Option<Uuid>,
    brand_id: Option<Uuid>,
    /// Products in the category or below it.
    category_id: Option<Uuid>,
    /// Price range on `currency` (required with a bound) and `price_type` (default retail).
    #[param(value_type = Option<Amount>)]
    price_min: Option<String>,
    #[param(value_type = Option<Amount>)]
    price_max: Option<String>,
    /// Required with `price_min`, `price_max` or `price_type`, refused without them.
    #[param(value_type = Option<Currency>)]
    currency: Option<String>,
    #[param(value_type = Option<PriceType>)]
    price_type: Option<String>,
    /// Products with (true) or without (false) stock in some warehouse.
    #[param(value_type = Option<bool>)]
    in_stock: Option<String>,
    /// Products changed at or after this time.
    updated_since: Option<DateTime<Utc>>,
}

fn flag(field: &str, v: Option<&str>, errors: &mut Vec<FieldError>) -> Option<bool> {
    match v? {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => {
            errors.push(FieldError::new(field, "must be true or false"));
            None
        }
    }
}

impl FilterQuery {
    /// A cost price filter tells costs apart (which products cost under 5 EUR): it needs
    /// `catalog:read_costs` as the costs themselves do.
    fn require_cost_access(&self, who: &Principal) -> Result<(), ApiError> {
        if self
            .price_type
            .as_deref()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("cost"))
            && !who.can(Permission::CatalogReadCosts)
        {
            return Err(ApiError::Forbidden(
                "filtering by cost price needs the catalog:read_costs permission".into(),
            ));
        }
        Ok(())
    }

    fn parse(&self, errors: &mut Vec<FieldError>) -> ProductFilter {
        let has_asin = flag("has_asin", self.has_asin.as_deref(), errors);
        let in_stock = flag("in_stock", self.in_stock.as_deref(), errors);
        let mut bad = |field: &str, e: String| errors.push(FieldError::new(field, e));
        let status = self.status.as_deref().and_then(|s| {
            s.parse()
                .map_err(|e: pm_domain::UnknownStatus| bad("status", e.to_string()))
                .ok()
        });
        let ean = self
            .ean
            .as_deref()
            .and_then(|s| Gtin::parse(s).map_err(|e| bad("ean", e.to_string())).ok());
        let asin = self
            .asin
            .as_deref()
            .and_then(|s| Asin::parse(s).map_err(|e| bad("asin", e.to_string())).ok());
        let price = if self.price_min.is_some() || self.price_max.is_some() || self.price_type.is_some() {
            match &self.currency {
                Some(c) => match pm_domain::Currency::parse(c) {
                    Ok(cur) => Some(PriceRange {
                        currency: cur.as_str().to_owned(),
                        price_type: self.price_type.clone(),
                        min: self.price_min.clone(),
                        max: self.price_max.clone(),
                    }),
                    Err(e) => {
                        bad("currency", e.to_string());
                        None
                    }
                },
                None => {
                    bad("currency", "required with a price range".into());
                    None
                }
            }
        } else {
            if let Some(c) = &self.currency {
                bad(
                    "currency",
                    format!("{c:?} filters nothing alone: give price_min or price_max with it"),
                );
            }
            None
        };
        ProductFilter {
            status,
            ean,
            sku: self.sku.clone(),
            asin,
            has_asin,
            supplier_id: self.supplier_id,
            brand_id: self.brand_id,
            category_id: self.category_id,
            price,
            in_stock,
            updated_since: self.updated_since,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `true`: the page carries `total` (exact up to a bound, then estimated; `total_exact`
    /// says which).
    #[param(pattern = "^(true|false|1|0)$")]
    count: Option<String>,
    /// `created` (default), `updated_at` or `title`; `-` in front for descending.
    #[param(pattern = "^-?(created|updated_at|title)$")]
    sort: Option<String>,
    /// Documented by `FilterQuery`'s own parameters, listed beside these.
    #[serde(flatten)]
    #[param(ignore)]
    filter: FilterQuery,
}

impl ListQuery {
    fn parse(self) -> Result<(ProductFilter, ProductSort, u32, Option<String>, bool), ApiError> {
        let mut errors = Vec::new();
        let count = flag("count", self.count.as_deref(), &mut errors).unwrap_or(false);
        let limit = page_limit(self.limit).unwrap_or_else(|e| {
            errors.push(e);
            DEFAULT_PAGE
        });
        let sort = match self.sort.as_deref().map(str::parse::<ProductSort>) {
            None => ProductSort::default(),
            Some(Ok(s)) => s,
            Some(Err(_)) => {
                errors.push(FieldError::new(
                    "sort",
                    format!(
                        "unknown sort {:?}; one of created, updated_at, title (a leading - for descending)",
                        self.sort.as_deref().unwrap_or_default()
                    ),
                ));
                ProductSort::default()
            }
        };
        let filter = self.filter.parse(&mut errors);
        if errors.is_empty() {
            Ok((filter, sort, limit, self.cursor, count))
        } else {
            Err(ApiError::Invalid(errors))
        }
    }
}

#[utoipa::path(
    get,
    path = "/products",
    tag = "products",
    operation_id = "list_products",
    summary = "List products",
    params(ListQuery, FilterQuery),
    responses((status = 200, description = "A page of live products.", body = CountedPage)),
)]
async fn list(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<CountedPage>, ApiError> {
    shelf(&s, &who, q, false).await
}

/// The live list or the trash: the same query, filters, sorts, cursors and counts.
async fn shelf(
    s: &AppState,
    who: &Principal,
    q: ListQuery,
    trash: bool,
) -> Result<Json<CountedPage>, ApiError> {
    who.require(Permission::CatalogRead)?;
    q.filter.require_cost_access(who)?;
    let (filter, sort, limit, cursor, count) = q.parse()?;
    let total = match count {
        true => {
            let msg = CountProducts {
                filter: filter.clone(),
                trash,
            };
            Some(s.actors.stores.catalog.send(msg).await?)
        }
        false => None,
    };
    let catalog = &s.actors.stores.catalog;
    let page = match trash {
        false => {
            let msg = ListProducts {
                filter,
                sort,
                limit,
                cursor,
            };
            catalog.send(msg).await?
        }
        true => {
            let msg = ListTrash {
                filter,
                sort,
                limit,
                cursor,
            };
            catalog.send(msg).await?
        }
    };
    let mut mains = super::media::main_images(s, page.items.iter().map(|p| p.id).collect()).await?;
    Ok(Json(CountedPage::new(page, total, &mut mains)))
}

/// A page of products, with the list's total when `count=true` asked for it.
#[derive(Serialize, ToSchema)]
#[schema(as = ProductPage)]
struct CountedPage {
    items: Vec<ProductView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    next_cursor: Option<String>,
    /// With `count=true`: how many products the list holds (all pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    /// With `count=true`: whether `total` is exact, or an estimate (beyond 10,000 products on
    /// PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    total_exact: Option<bool>,
}

impl CountedPage {
    fn new(
        page: Page<Product>,
        total: Option<Total>,
        mains: &mut std::collections::HashMap<Uuid, super::media::MainImageView>,
    ) -> Self {
        Self {
            items: page
                .items
                .into_iter()
                .map(|product| ProductView {
                    main_image: mains.remove(&product.id),
                    product,
                })
                .collect(),
            next_cursor: page.next_cursor,
            total: total.map(|t| t.count),
            total_exact: total.map(|t| t.exact),
        }
    }
}

#[utoipa::path(
    get,
    path = "/products/trash",
    tag = "products",
    operation_id = "list_trash",
    summary = "List the trash",
    params(ListQuery, FilterQuery),
    responses((status = 200, description = "A page of products in the trash.", body = CountedPage)),
)]
async fn trash(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<CountedPage>, ApiError> {
    shelf(&s, &who, q, true).await
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Words, an EAN, a SKU or an ASIN; 1 to 200 characters, not only spaces.
    #[param(min_length = 1, max_length = 200)]
    q: String,
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// Documented by `FilterQuery`'s own parameters, listed beside these.
    #[serde(flatten)]
    #[param(ignore)]
    filter: FilterQuery,
}

#[derive(Serialize, ToSchema)]
struct SearchAnswer<'a> {
    /// The query, as given.
    #[schema(value_type = String)]
    q: &'a str,
    items: Vec<SearchHit>,
}

/// Exact EAN/SKU/ASIN hits first, then text matches by relevance. Answers are cached per
/// query (a hash of it) until the next product write.
#[utoipa::path(
    get,
    path = "/products/search",
    tag = "products",
    operation_id = "search_products",
    summary = "Search products",
    params(SearchQuery, FilterQuery),
    responses((status = 200, description = "The hits, best first.", body = SearchAnswer)),
)]
async fn search(
    State(s): State<AppState>,
    who: Principal,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    who.require(Permission::CatalogRead)?;
    q.filter.require_cost_access(&who)?;
    let mut errors = Vec::new();
    let limit = bounded_limit(q.limit, 20, MAX_SEARCH_LIMIT).unwrap_or_else(|e| {
        errors.push(e);
        20
    });
    if q.q.trim().is_empty() || q.q.chars().count() > 200 {
        errors.push(FieldError::new("q", "1 to 200 characters"));
    }
    let filter = q.filter.parse(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let key = {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::to_vec(&q).map_err(|e| ApiError::Internal(e.to_string()))?;
        hex::encode(Sha256::digest(canonical))
    };
    let bytes = s
        .cache
        .get_or_load(Kind::SearchResults, &key, async {
            let msg = SearchProducts {
                q: q.q.clone(),
                filter,
                limit,
            };
            let items = s.actors.stores.catalog.send(msg).await?;
            to_bytes(&SearchAnswer { q: &q.q, items })
        })
        .await?;
    Ok(json_bytes(bytes))
}

/// Products to create or update by EAN (or SKU). An item that is not a valid product fails alone (its
/// result says why); the document describes the items that succeed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProductBulk)]
struct BulkBody {
    #[schema(value_type = Vec<CreateBody>, min_items = 1, max_items = 1000)]
    items: Vec<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(tag = "result", rename_all = "lowercase")]
enum ItemOutcome {
    Created { id: Uuid },
    Updated { id: Uuid },
    Unchanged { id: Uuid },
    Failed { field: String, reason: String },
}

/// What happened to one item, by its index in the request.
#[derive(Serialize, ToSchema)]
#[schema(as = BulkItemResult)]
struct ItemResult {
    index: usize,
    #[serde(flatten)]
    outcome: ItemOutcome,
}

#[derive(Serialize, ToSchema)]
#[schema(as = BulkResult)]
struct BulkAnswer {
    created: usize,
    updated: usize,
    unchanged: usize,
    failed: usize,
    results: Vec<ItemResult>,
}

/// Creates or updates up to 1,000 products by EAN, or by SKU for items without one; an item
/// that changes nothing is `unchanged`. Every item gets a result in input order; an
/// invalid item fails alone and the valid ones land.
#[utoipa::path(
    post,
    path = "/products/bulk",
    tag = "products",
    operation_id = "bulk_upsert_products",
    summary = "Create or update products by EAN (or SKU), up to 1,000 at once",
    description = "The body may be up to 32 MiB. Items are keyed by EAN, or by SKU \
        (case-insensitive) when they have none; an EAN for a product known by its SKU alone \
        joins it. Every item gets a result in input order: created, updated, unchanged (nothing \
        to write) or failed; an invalid item fails alone and the valid ones land.",
    request_body = BulkBody,
    responses((status = 200, description = "A result per item.", body = BulkAnswer)),
)]
async fn bulk(
    State(s): State<AppState>,
    who: Principal,
    Body(b): Body<BulkBody>,
) -> Result<Json<BulkAnswer>, ApiError> {
    who.require(Permission::CatalogWrite)?;
    if b.items.is_empty() || b.items.len() > MAX_UPSERT_BATCH {
        return Err(ApiError::invalid(
            "items",
            format!("1 to {MAX_UPSERT_BATCH} items"),
        ));
    }
    let mut outcomes: Vec<Option<ItemOutcome>> = Vec::with_capacity(b.items.len());
    let mut valid = Vec::new();
    for (index, item) in b.items.into_iter().enumerate() {
        if !item.is_object() {
            outcomes.push(Some(ItemOutcome::Failed {
                field: format!("items[{index}]"),
                reason: "must be a product (a JSON object)".into(),
            }));
            continue;
        }
        let parsed = serde_json::to_vec(&item)
            .map_err(|e| ApiError::Internal(e.to_string()))
            .and_then(|bytes| crate::extract::parse::<CreateBody>(&bytes))
            .and_then(|body| body.check().map(|()| body));
        match parsed {
            Ok(body) => {
                outcomes.push(None);
                valid.push(body.into_new());
            }
            Err(ApiError::Invalid(errs)) => {
                let e = errs
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| FieldError::new("item", "invalid"));
                let field = if e.field == "body" {
                    format!("items[{index}]")
                } else {
                    e.field
                };
                outcomes.push(Some(ItemOutcome::Failed {
                    field,
                    reason: e.reason,
                }));
            }
            Err(e) => outcomes.push(Some(ItemOutcome::Failed {
                field: "item".into(),
                reason: e.to_string(),
            })),
        }
    }
    let stored = if valid.is_empty() {
        Vec::new()
    } else {
        s.actors
            .stores
            .catalog_bulk
            .send(UpsertProducts(valid).by(who.origin()))
            .await?
    };
    let mut stored = stored.into_iter();
    let mut results = Vec::with_capacity(outcomes.len());
    let (mut created, mut updated, mut unchanged, mut failed) = (0, 0, 0, 0);
    for (index, o) in outcomes.into_iter().enumerate() {
        let outcome = match o {
            Some(o) => o,
            None => match stored.next() {
                Some(UpsertResult::Created { id }) => ItemOutcome::Created { id },
                Some(UpsertResult::Updated { id }) => ItemOutcome::Updated { id },
                Some(UpsertResult::Unchanged { id }) => ItemOutcome::Unchanged { id },
                Some(UpsertResult::Failed { field, message }) => ItemOutcome::Failed {
                    field: field.into(),
                    reason: message,
                },
                None => ItemOutcome::Failed {
                    field: "item".into(),
                    reason: "no result from the store".into(),
                },
            },
        };
        match &outcome {
            ItemOutcome::Created { .. } => created += 1,
            ItemOutcome::Updated { .. } => updated += 1,
            ItemOutcome::Unchanged { .. } => unchanged += 1,
            ItemOutcome::Failed { .. } => failed += 1,
        }
        results.push(ItemResult { index, outcome });
    }
    Ok(Json(BulkAnswer {
        created,
        updated,
        unchanged,
        failed,
        results,
    }))
}
