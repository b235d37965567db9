//! Products: create, read, partial update, soft delete and the trash, keyset-paginated lists
//! with filters and sorting, bulk upsert by EAN.
//!
//! Soft delete: `delete_product` moves a product to the trash (`deleted_at` set); every read,
//! list and search sees live products only, [`Catalog::list_trash`] the others. The EAN is
//! unique among live products only (a partial unique index), so a trashed product does not
//! block a new one with its EAN; restoring it then fails with a conflict on `ean`.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use pm_domain::text::sort_key;
use pm_domain::{Asin, Gtin, ProductStatus};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use super::{Catalog, Page};
use crate::db::BeginLocked;
use crate::{with_conn, StoreError};

/// Free attributes of a product: a JSON object (the type makes anything else unrepresentable).
pub type Attributes = serde_json::Map<String, serde_json::Value>;

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub ean: Option<Gtin>,
    pub sku: Option<String>,
    pub asin: Option<Asin>,
    pub title: String,
    pub description: Option<String>,
    /// The brand as a supplier spells it (free text). Kept beside `brand_id`: imports bring
    /// brand names long before anyone curates them into brands, and search matches on it.
    pub brand: Option<String>,
    /// The curated brand, when known.
    pub brand_id: Option<Uuid>,
    pub primary_category_id: Option<Uuid>,
    pub status: ProductStatus,
    pub weight_grams: Option<i32>,
    pub length_mm: Option<i32>,
    pub width_mm: Option<i32>,
    pub height_mm: Option<i32>,
    #[schema(value_type = Object)]
    pub attributes: Attributes,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the product went to the trash; `None` while live.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Grows by one with every change of the row: the product's ETag, and what a write that
    /// must not overwrite someone else's names (If-Match).
    pub version: i64,
    /// The title's case- and accent-free sort key (`pm_domain::text::sort_key`), as stored:
    /// what title order compares and what its cursors carry. Not part of the API.
    #[serde(skip)]
    pub title_key: String,
}

/// A product to create; values are already validated.
#[derive(Debug, Clone, Default)]
pub struct NewProduct {
    pub ean: Option<Gtin>,
    pub sku: Option<String>,
    pub asin: Option<Asin>,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub brand_id: Option<Uuid>,
    pub primary_category_id: Option<Uuid>,
    pub status: ProductStatus,
    pub weight_grams: Option<i32>,
    pub length_mm: Option<i32>,
    pub width_mm: Option<i32>,
    pub height_mm: Option<i32>,
    pub attributes: Attributes,
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    pub ean: Option<Option<Gtin>>,
    pub sku: Option<Option<String>>,
    pub asin: Option<Option<Asin>>,
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub brand: Option<Option<String>>,
    pub brand_id: Option<Option<Uuid>>,
    pub primary_category_id: Option<Option<Uuid>>,
    pub status: Option<ProductStatus>,
    pub weight_grams: Option<Option<i32>>,
    pub length_mm: Option<Option<i32>>,
    pub width_mm: Option<Option<i32>>,
    pub height_mm: Option<Option<i32>>,
    /// Replaces the whole object (an empty object clears it).
    pub attributes: Option<Attributes>,
}

/// Filters of the product list and of search; all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    pub status: Option<ProductStatus>,
    pub ean: Option<Gtin>,
    pub sku: Option<String>,
    pub asin: Option<Asin>,
    /// `Some(true)`: only products with an ASIN; `Some(false)`: only those without.
    pub has_asin: Option<bool>,
    /// Products offered by this supplier (`supplier_products`).
    pub supplier_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
    /// Products in this category or any below it, as primary category or through
    /// `product_categories` (any taxonomy).
    pub category_id: Option<Uuid>,
    /// Products with a current price in this range.
    pub price: Option<PriceRange>,
    /// `Some(true)`: the quantities over all warehouses add up to more than zero;
    /// `Some(false)`: they do not (no stock rows counts as zero).
    pub in_stock: Option<bool>,
    /// Changed at or after this instant.
    pub updated_since: Option<DateTime<Utc>>,
}

/// A price range on one currency and price type. A product matches when one of its current
/// prices (`valid_from <= now < valid_to`) of that type and currency is within the bounds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PriceRange {
    /// ISO 4217 code as stored, e.g. `EUR`.
    pub currency: String,
    /// `retail` (when `None`), `cost`, `msrp` or `sale`.
    pub price_type: Option<String>,
    /// Inclusive bounds as decimal strings (`12.50`): amounts are exact decimals and never
    /// pass through a float on PostgreSQL.
    pub min: Option<String>,
    pub max: Option<String>,
}

const PRICE_TYPES: [&str; 4] = ["retail", "cost", "msrp", "sale"];

/// What a list is ordered by. Every order ends with the id, so it is total and keyset
/// pagination never skips or repeats a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Creation order: the id, since ids are UUIDv7.
    #[default]
    Created,
    UpdatedAt,
    Title,
}

/// A sort key and its direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProductSort {
    pub key: SortKey,
    pub descending: bool,
}

/// A sort string that is not one of `created`, `updated_at`, `title` (each optionally
/// prefixed with `-` for descending).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sort {0:?} (expected created, updated_at or title, with - for descending)")]
pub struct UnknownSort(pub String);

impl ProductSort {
    fn tag(self) -> &'static str {
        match (self.key, self.descending) {
            (SortKey::Created, false) => "created",
            (SortKey::Created, true) => "-created",
            (SortKey::UpdatedAt, false) => "updated_at",
            (SortKey::UpdatedAt, true) => "-updated_at",
            (SortKey::Title, false) => "title",
            (SortKey::Title, true) => "-title",
        }
    }
}

impl std::str::FromStr for ProductSort {
    type Err = UnknownSort;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let key = match name {
            "created" | "created_at" => SortKey::Created,
            "updated_at" => SortKey::UpdatedAt,
            "title" => SortKey::Title,
            _ => return Err(UnknownSort(s.to_owned())),
        };
        Ok(Self { key, descending })
    }
}

impl fmt::Display for ProductSort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// The most products one [`Catalog::upsert_products_by_ean`] call takes.
pub const MAX_UPSERT_BATCH: usize = 1000;

/// Counts at most this many products exactly on PostgreSQL; beyond, the planner estimates.
pub const EXACT_COUNT_LIMIT: i64 = 10_000;
/// The same bound on SQLite, where counting in process is cheap.
pub const EXACT_COUNT_LIMIT_SQLITE: i64 = 1_000_000;

/// How many products a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Total {
    pub count: i64,
    /// `false`: `count` is an estimate (at least the exact bound).
    pub exact: bool,
}

/// What happened to one item of a bulk upsert, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum UpsertResult {
    Created {
        id: Uuid,
    },
    Updated {
        id: Uuid,
    },
    /// The item matched a product whose stored values it would not change: nothing was
    /// written (`updated_at` and `version` stay).
    Unchanged {
        id: Uuid,
    },
    /// The item was refused; the others are unaffected.
    Failed {
        field: &'static str,
        message: String,
    },
}

/// Product columns in `RETURNING` lists (no table alias: SQLite does not allow one there).
pub(super) const COLUMNS: &str = "id, ean, sku, asin, title, description, brand, brand_id, \
    primary_category_id, status, weight_grams, length_mm, width_mm, height_mm, attributes, \
    created_at, updated_at, deleted_at, version, title_key";

/// Product columns of `products p` in queries that join or filter with subqueries.
pub(super) const P_COLUMNS: &str = "p.id, p.ean, p.sku, p.asin, p.title, p.description, p.brand, \
    p.brand_id, p.primary_category_id, p.status, p.weight_grams, p.length_mm, p.width_mm, \
    p.height_mm, p.attributes, p.created_at, p.updated_at, p.deleted_at, p.version, p.title_key";

fn map_unique(e: sqlx::Error, ean: Option<&Gtin>) -> StoreError {
    match &e {
        // The only unique index on products besides the key is the live EAN.
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
            entity: "product",
            field: "ean",
            value: ean.map(ToString::to_string).unwrap_or_default(),
        },
        _ => e.into(),
    }
}

pub(super) fn product_from_row<R: Row>(row: &R) -> Result<Product, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Json<Attributes>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let corrupt = |what: String| StoreError::Corrupt(what);
    let ean: Option<String> = row.try_get("ean")?;
    let asin: Option<String> = row.try_get("asin")?;
    let status: String = row.try_get("status")?;
    let Json(attributes): Json<Attributes> = row.try_get("attributes")?;
    Ok(Product {
        id: row.try_get("id")?,
        ean: ean
            .map(|s| Gtin::parse(&s))
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?,
        sku: row.try_get("sku")?,
        asin: asin
            .map(|s| Asin::parse(&s))
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        brand: row.try_get("brand")?,
        brand_id: row.try_get("brand_id")?,
        primary_category_id: row.try_get("primary_category_id")?,
        status: status
            .parse()
            .map_err(|e: pm_domain::UnknownStatus| corrupt(e.to_string()))?,
        weight_grams: row.try_get("weight_grams")?,
        length_mm: row.try_get("length_mm")?,
        width_mm: row.try_get("width_mm")?,
        height_mm: row.try_get("height_mm")?,
        attributes,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deleted_at: row.try_get("deleted_at")?,
        version: row.try_get("version")?,
        title_key: row.try_get("title_key")?,
    })
}

fn not_found(id: Uuid) -> StoreError {
    StoreError::NotFound {
        entity: "product",
        id: id.to_string(),
    }
}

/// One bound value of a [`Sql`] statement.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(Option<i32>),
    BigInt(i64),
    Time(Option<DateTime<Utc>>),
    Json(Attributes),
}

/// Binds every [`Arg`] of `$args` to the query `$q`, in order. A macro because the query type
/// differs per backend (see [`with_conn!`]).
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Uuid(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_deref()),
                Arg::Int(v) => q.bind(*v),
                Arg::BigInt(v) => q.bind(*v),
                Arg::Time(v) => q.bind(*v),
                Arg::Json(v) => q.bind(sqlx::types::Json(v)),
            };
        }
        q
    }};
}
pub(super) use bind_args;

/// SQL text and its arguments, built together: [`Sql::arg`] appends a value and returns its
/// placeholder, numbered in the order of the calls. Values never enter the text, and as long
/// as placeholders are written in the order they were asked for, their numbers ascend in the
/// text, which SQLite needs (it numbers `$n` parameters by first appearance).
#[derive(Debug, Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) args: Vec<Arg>,
}

impl Sql {
    pub(super) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends `a` to the arguments; returns its placeholder (`$n`) for the caller to write.
    pub(super) fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    /// Writes `before`, the placeholder of `a`, then `after`.
    pub(super) fn push_arg(&mut self, before: &str, a: Arg, after: &str) -> &mut Self {
        let p = self.arg(a);
        self.text.push_str(before);
        self.text.push_str(&p);
        self.text.push_str(after);
        self
    }
}

fn text(s: &str) -> Arg {
    Arg::Text(Some(s.to_owned()))
}

/// Whether `s` is a plain decimal (`-12.50`) that fits `NUMERIC(19,4)`: checked here so that
/// the cast in SQL never fails on input.
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    !int.is_empty()
        && int.len() <= 15
        && all_digits(int)
        && frac.is_none_or(|f| !f.is_empty() && f.len() <= 4 && all_digits(f))
}

/// Appends ` AND column = value`, or a condition nothing meets when `value` holds a NUL:
/// PostgreSQL refuses NUL in text outright (an error, not a mismatch), and no stored value
/// has one.
pub(super) fn text_eq(sql: &mut Sql, column: &str, value: &str) {
    if value.contains('\0') {
        sql.push(" AND 1 = 0");
    } else {
        sql.push_arg(&format!(" AND {column} = "), text(value), "");
    }
}

/// Appends ` AND …` conditions for every filter that is set. Products are `p`.
pub(super) fn push_filters(sql: &mut Sql, f: &ProductFilter, now: DateTime<Utc>) -> Result<(), StoreError> {
    if let Some(s) = f.status {
        sql.push_arg(" AND p.status = ", text(s.as_str()), "");
    }
    if let Some(e) = &f.ean {
        sql.push_arg(" AND p.ean = ", text(e.as_str()), "");
    }
    if let Some(s) = &f.sku {
        text_eq(sql, "p.sku", s);
    }
    if let Some(a) = &f.asin {
        sql.push_arg(" AND p.asin = ", text(a.as_str()), "");
    }
    match f.has_asin {
        Some(true) => {
            sql.push(" AND p.asin IS NOT NULL");
        }
        Some(false) => {
            sql.push(" AND p.asin IS NULL");
        }
        None => {}
    }
    if let Some(b) = f.brand_id {
        sql.push_arg(" AND p.brand_id = ", Arg::Uuid(Some(b)), "");
    }
    if let Some(s) = f.supplier_id {
        sql.push_arg(
            " AND EXISTS (SELECT 1 FROM supplier_products sp WHERE sp.product_id = p.id AND sp.supplier_id = ",
            Arg::Uuid(Some(s)),
            ")",
        );
    }
    if let Some(c) = f.category_id {
        // The subtree of `c`: every category whose materialised path starts with c's path
        // (`/<root>/…/<c>/`). Written as a range, `path >= P AND path < P'` where P' is P with
        // its final `/` raised to `0`, so that the B-tree index on `path` answers it with the
        // node's path known only at run time (a LIKE with a computed pattern cannot).
        let node = sql.arg(Arg::Uuid(Some(c)));
        let subtree = format!(
            "SELECT d.id FROM categories n, categories d WHERE n.id = {node} \
             AND d.path >= n.path AND d.path < substr(n.path, 1, length(n.path) - 1) || '0'"
        );
        sql.push(&format!(
            " AND (p.primary_category_id IN ({subtree}) OR EXISTS (SELECT 1 FROM product_categories pc \
             WHERE pc.product_id = p.id AND pc.category_id IN ({subtree})))"
        ));
    }
    if let Some(r) = &f.price {
        let price_type = r.price_type.as_deref().unwrap_or("retail");
        if !PRICE_TYPES.contains(&price_type) {
            return Err(StoreError::Invalid {
                field: "price_type",
                reason: format!("must be one of {}, found {price_type:?}", PRICE_TYPES.join(", ")),
            });
        }
        for (field, v) in [("min_price", &r.min), ("max_price", &r.max)] {
            if let Some(v) = v {
                if !is_decimal(v) {
                    return Err(StoreError::Invalid {
                        field,
                        reason: format!("{v:?} is not a decimal number such as 12.50"),
                    });
                }
            }
        }
        sql.push_arg(
            " AND EXISTS (SELECT 1 FROM product_prices pr WHERE pr.product_id = p.id AND pr.price_type = ",
            text(price_type),
            "",
        );
        text_eq(sql, "pr.currency", &r.currency);
        let at = sql.arg(Arg::Time(Some(now)));
        sql.push(&format!(
            " AND (pr.valid_from IS NULL OR pr.valid_from <= {at}) AND (pr.valid_to IS NULL OR pr.valid_to > {at})"
        ));
        // CAST … AS NUMERIC is exact on PostgreSQL (the column is NUMERIC already) and turns
        // SQLite's decimal text into a number.
        if let Some(min) = &r.min {
            sql.push_arg(
                " AND CAST(pr.amount AS NUMERIC) >= CAST(",
                text(min),
                " AS NUMERIC)",
            );
        }
        if let Some(max) = &r.max {
            sql.push_arg(
                " AND CAST(pr.amount AS NUMERIC) <= CAST(",
                text(max),
                " AS NUMERIC)",
            );
        }
        sql.push(")");
    }
    match f.in_stock {
        Some(true) => {
            sql.push(" AND (SELECT SUM(st.quantity) FROM product_stocks st WHERE st.product_id = p.id) > 0");
        }
        Some(false) => {
            sql.push(
                " AND COALESCE((SELECT SUM(st.quantity) FROM product_stocks st WHERE st.product_id = p.id), 0) <= 0",
            );
        }
        None => {}
    }
    if let Some(t) = f.updated_since {
        sql.push_arg(" AND p.updated_at >= ", Arg::Time(Some(t)), "");
    }
    Ok(())
}

/// Where a page ended: the sort it belongs to, the last row's sort value and its id.
/// Encoded as base64url of a small JSON object, opaque to callers.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    #[serde(rename = "s")]
    sort: String,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    id: Uuid,
}

/// The position after which the next page starts, as values ready to bind.
enum After {
    Id(Uuid),
    Time(DateTime<Utc>, Uuid),
    Text(String, Uuid),
}

fn encode_cursor(sort: ProductSort, last: &Product) -> String {
    let value = match sort.key {
        SortKey::Created => None,
        SortKey::UpdatedAt => Some(last.updated_at.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        SortKey::Title => Some(last.title_key.clone()),
    };
    let c = Cursor {
        sort: sort.tag().to_owned(),
        value,
        id: last.id,
    };
    // Serialising a struct of strings and a UUID cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

/// Decodes a cursor of `sort`; anything else (garbage, a cursor of another sort) is
/// [`StoreError::BadCursor`].
fn decode_cursor(s: &str, sort: ProductSort) -> Result<After, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| StoreError::BadCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    if c.sort != sort.tag() {
        return Err(StoreError::BadCursor);
    }
    match (sort.key, c.value) {
        (SortKey::Created, None) => Ok(After::Id(c.id)),
        (SortKey::UpdatedAt, Some(v)) => DateTime::parse_from_rfc3339(&v)
            .map(|t| After::Time(t.with_timezone(&Utc), c.id))
            .map_err(|_| StoreError::BadCursor),
        (SortKey::Title, Some(v)) => Ok(After::Text(v, c.id)),
        _ => Err(StoreError::BadCursor),
    }
}

/// Live products or the trash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shelf {
    Live,
    Trash,
}

/// The statement that creates a product, or updates the live one with its EAN. On update,
/// the title is replaced, other fields only when the item carries them (`None` keeps the
/// stored value: a supplier file without descriptions must not erase them), attributes only
/// when the item has some, and the status is kept: it is the product's lifecycle, changed
/// through [`Catalog::update_product`], not by whatever a feed says.
/// Serialises bulk upserts that key items by SKU (see [`Catalog::upsert_products_by_ean`]).
pub(super) const SKU_LOCK: &str = "catalog.products.sku";

/// "The product has no EAN", written so that no planner takes it for an index lookup: SQLite
/// reads `ean IS NULL` as an equality on the unique EAN index, then walks every product without
/// an EAN instead of the handful its `lower(sku)` index finds (measured: 65 ms against 0.3 ms for
/// 500 SKUs among 200,000 products without EAN). An EAN is never empty, so the two agree.
pub(crate) const NO_EAN: &str = "coalesce(ean, '') = ''";

pub(super) const UPSERT: &str = "INSERT INTO products (id, ean, sku, asin, title, description, brand, brand_id, \
    primary_category_id, status, weight_grams, length_mm, width_mm, height_mm, attributes, created_at, updated_at, \
    title_key) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $18) \
    ON CONFLICT (ean) WHERE deleted_at IS NULL DO UPDATE SET \
    sku = COALESCE(excluded.sku, products.sku), \
    asin = COALESCE(excluded.asin, products.asin), \
    title = excluded.title, \
    title_key = excluded.title_key, \
    description = COALESCE(excluded.description, products.description), \
    brand = COALESCE(excluded.brand, products.brand), \
    brand_id = COALESCE(excluded.brand_id, products.brand_id), \
    primary_category_id = COALESCE(excluded.primary_category_id, products.primary_category_id), \
    weight_grams = COALESCE(excluded.weight_grams, products.weight_grams), \
    length_mm = COALESCE(excluded.length_mm, products.length_mm), \
    width_mm = COALESCE(excluded.width_mm, products.width_mm), \
    height_mm = COALESCE(excluded.height_mm, products.height_mm), \
    attributes = CASE WHEN $17 THEN excluded.attributes ELSE products.attributes END, \
    updated_at = excluded.updated_at, \
    version = products.version + 1 \
    WHERE products.sku IS DISTINCT FROM COALESCE(excluded.sku, products.sku) \
    OR products.asin IS DISTINCT FROM COALESCE(excluded.asin, products.asin) \
    OR products.title IS DISTINCT FROM excluded.title \
    OR products.description IS DISTINCT FROM COALESCE(excluded.description, products.description) \
    OR products.brand IS DISTINCT FROM COALESCE(excluded.brand, products.brand) \
    OR products.brand_id IS DISTINCT FROM COALESCE(excluded.brand_id, products.brand_id) \
    OR products.primary_category_id IS DISTINCT FROM COALESCE(excluded.primary_category_id, products.primary_category_id) \
    OR products.weight_grams IS DISTINCT FROM COALESCE(excluded.weight_grams, products.weight_grams) \
    OR products.length_mm IS DISTINCT FROM COALESCE(excluded.length_mm, products.length_mm) \
    OR products.width_mm IS DISTINCT FROM COALESCE(excluded.width_mm, products.width_mm) \
    OR products.height_mm IS DISTINCT FROM COALESCE(excluded.height_mm, products.height_mm) \
    OR ($17 AND products.attributes IS DISTINCT FROM excluded.attributes) \
    RETURNING id";

/// The same merge as [`UPSERT`] onto one known row (`$1`), for items keyed by SKU and for an
/// EAN that arrives for a product known so far by its SKU only (it joins that product; `$2` is
/// then set). Nothing is written when nothing would change. SKUs match without regard to
/// case, and the stored spelling stays when only the case differs.
pub(super) const MERGE_INTO: &str = "UPDATE products SET \
    ean = COALESCE($2, ean), \
    sku = CASE WHEN lower(sku) = lower($3) THEN sku ELSE COALESCE($3, sku) END, \
    asin = COALESCE($4, asin), \
    title = $5, \
    title_key = $18, \
    description = COALESCE($6, description), \
    brand = COALESCE($7, brand), \
    brand_id = COALESCE($8, brand_id), \
    primary_category_id = COALESCE($9, primary_category_id), \
    weight_grams = COALESCE($11, weight_grams), \
    length_mm = COALESCE($12, length_mm), \
    width_mm = COALESCE($13, width_mm), \
    height_mm = COALESCE($14, height_mm), \
    attributes = CASE WHEN $17 THEN $15 ELSE attributes END, \
    updated_at = $16, \
    version = version + 1 \
    WHERE id = $1 AND deleted_at IS NULL AND ( \
    ean IS DISTINCT FROM COALESCE($2, ean) \
    OR lower(sku) IS DISTINCT FROM lower(COALESCE($3, sku)) \
    OR asin IS DISTINCT FROM COALESCE($4, asin) \
    OR title IS DISTINCT FROM $5 \
    OR description IS DISTINCT FROM COALESCE($6, description) \
    OR brand IS DISTINCT FROM COALESCE($7, brand) \
    OR brand_id IS DISTINCT FROM COALESCE($8, brand_id) \
    OR primary_category_id IS DISTINCT FROM COALESCE($9, primary_category_id) \
    OR weight_grams IS DISTINCT FROM COALESCE($11, weight_grams) \
    OR length_mm IS DISTINCT FROM COALESCE($12, length_mm) \
    OR width_mm IS DISTINCT FROM COALESCE($13, width_mm) \
    OR height_mm IS DISTINCT FROM COALESCE($14, height_mm) \
    OR ($17 AND attributes IS DISTINCT FROM $15)) \
    RETURNING id";

impl Catalog {
    /// The brands and categories `items` name that do not exist, each with the error its items
    /// fail with; checked once each, before a batch's transaction.
    pub(super) async fn missing_refs(
        &self,
        items: &[NewProduct],
    ) -> Result<std::collections::HashMap<Uuid, StoreError>, StoreError> {
        let mut missing: std::collections::HashMap<Uuid, StoreError> = std::collections::HashMap::new();
        let mut known = std::collections::HashSet::new();
        for p in items {
            for (b, c) in [(p.brand_id, None), (None, p.primary_category_id)] {
                let Some(id) = b.or(c) else { continue };
                if known.contains(&id) || missing.contains_key(&id) {
                    continue;
                }
                match self.check_refs(b, c).await {
                    Ok(()) => {
                        known.insert(id);
                    }
                    Err(e @ StoreError::Invalid { .. }) => {
                        missing.insert(id, e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(missing)
    }
}

/// The upsert of [`Catalog::upsert_products`] on an open write transaction: `$tx` a
/// `sqlx::Transaction` of either backend, `$items` `&[NewProduct]`, `$missing` the map of
/// [`Catalog::missing_refs`], `$now` the write time. Evaluates to `Vec<UpsertResult>` (in input
/// order) and returns early from the enclosing function on a database error. A macro because
/// the transaction's type differs per backend (see [`with_conn!`]); an import's batch runs it
/// inside its own transaction.
macro_rules! upsert_items {
    ($tx:ident, $items:expr, $missing:expr, $now:expr, $backend:expr) => {
        upsert_items!($tx, $items, $missing, $now, $backend, true)
    };
    // `$sku_only_possible`: `false` when the caller already knows, under the SKU lock, that no
    // item's SKU belongs to a product known by its SKU alone (an import's batch checks it to
    // take the lock shared), so the lookup below is not made twice.
    ($tx:ident, $items:expr, $missing:expr, $now:expr, $backend:expr, $sku_only_possible:expr) => {{
        let items: &[$crate::catalog::NewProduct] = $items;
        let missing: &std::collections::HashMap<uuid::Uuid, $crate::StoreError> = $missing;
        let now = $now;
        let tx = &mut $tx;
            // Items refused before any statement, each alone.
            let mut done: Vec<Option<$crate::catalog::UpsertResult>> = items
                .iter()
                .map(|p| $crate::catalog::products::upsert_check(p, missing))
                .collect();
            // The fast path: items keyed by an EAN that nothing else in the batch touches and
            // that join no product known by its SKU alone go in multi-row statements (see
            // `fast_candidates`); the others one by one, in order, below.
            let mut fast = $crate::catalog::products::fast_candidates(items, &done);
            if !fast.is_empty() {
                // An EAN nobody has yet with a SKU that a product without EAN has: it joins
                // that product (below, one by one), so it leaves the fast path.
                let with_sku: Vec<usize> = if $sku_only_possible {
                    fast.iter().copied().filter(|i| items[*i].sku.is_some()).collect()
                } else {
                    Vec::new()
                };
                let mut eanless: std::collections::HashSet<String> = std::collections::HashSet::new();
                let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
                for part in with_sku.chunks(500) {
                    let list = $crate::catalog::products::placeholders(0, part.len());
                    let sql = format!(
                        "SELECT lower(sku) FROM products WHERE deleted_at IS NULL AND {NO_EAN} AND lower(sku) IN {list}",
                        NO_EAN = $crate::catalog::products::NO_EAN
                    );
                    let mut q = sqlx::query_scalar::<_, String>(&sql).persistent(false);
                    for i in part {
                        q = q.bind(items[*i].sku.as_deref().map(str::to_lowercase));
                    }
                    eanless.extend(q.fetch_all(&mut **tx).await?);
                }
                if !eanless.is_empty() {
                    let joining: Vec<usize> = with_sku
                        .iter()
                        .copied()
                        .filter(|i| items[*i].sku.as_deref().is_some_and(|k| eanless.contains(&k.to_lowercase())))
                        .collect();
                    for part in joining.chunks(500) {
                        let list = $crate::catalog::products::placeholders(0, part.len());
                        let sql = format!("SELECT ean FROM products WHERE deleted_at IS NULL AND ean IN {list}");
                        let mut q = sqlx::query_scalar::<_, String>(&sql).persistent(false);
                        for i in part {
                            q = q.bind(items[*i].ean.as_ref().map(pm_domain::Gtin::as_str));
                        }
                        known.extend(q.fetch_all(&mut **tx).await?);
                    }
                    fast.retain(|i| {
                        let p = &items[*i];
                        let joins = p.sku.as_deref().is_some_and(|k| eanless.contains(&k.to_lowercase()))
                            && !p.ean.as_ref().is_some_and(|e| known.contains(e.as_str()));
                        !joins
                    });
                }
                // Multi-row upserts, one statement per chunk and attribute mode; the id each
                // item proposes tells created from updated, and an item the statement did not
                // return changed nothing.
                let mut fresh: std::collections::HashMap<String, (usize, uuid::Uuid)> = std::collections::HashMap::new();
                for with_attrs in [false, true] {
                    let mut group: Vec<usize> = fast
                        .iter()
                        .copied()
                        .filter(|i| items[*i].attributes.is_empty() != with_attrs)
                        .collect();
                    // In EAN order: concurrent upserts lock the rows they meet in one order,
                    // so they wait for each other instead of deadlocking.
                    group.sort_by(|a, b| items[*a].ean.as_ref().map(pm_domain::Gtin::as_str).cmp(&items[*b].ean.as_ref().map(pm_domain::Gtin::as_str)));
                    for part in group.chunks(500) {
                        let sql = $crate::catalog::products::multi_upsert_sql($backend, part.len(), with_attrs);
                        let mut q = sqlx::query_as::<_, (uuid::Uuid, String)>(&sql).persistent(false);
                        for i in part {
                            let p = &items[*i];
                            let id = uuid::Uuid::now_v7();
                            let ean = p.ean.as_ref().map(pm_domain::Gtin::as_str).unwrap_or_default();
                            fresh.insert(ean.to_owned(), (*i, id));
                            q = q
                                .bind(id)
                                .bind(ean)
                                .bind(p.sku.as_deref())
                                .bind(p.asin.as_ref().map(pm_domain::Asin::as_str))
                                .bind(&p.title)
                                .bind(p.description.as_deref())
                                .bind(p.brand.as_deref())
                                .bind(p.brand_id)
                                .bind(p.primary_category_id)
                                .bind(p.status.as_str())
                                .bind(p.weight_grams)
                                .bind(p.length_mm)
                                .bind(p.width_mm)
                                .bind(p.height_mm)
                                .bind(sqlx::types::Json(&p.attributes))
                                .bind(now)
                                .bind(now)
                                .bind(pm_domain::text::sort_key(&p.title));
                        }
                        for (id, ean) in q.fetch_all(&mut **tx).await? {
                            if let Some((i, proposed)) = fresh.get(&ean) {
                                done[*i] = Some(if id == *proposed {
                                    $crate::catalog::UpsertResult::Created { id }
                                } else {
                                    $crate::catalog::UpsertResult::Updated { id }
                                });
                            }
                        }
                    }
                }
                let unchanged: Vec<usize> = fast.iter().copied().filter(|i| done[*i].is_none()).collect();
                for part in unchanged.chunks(500) {
                    let list = $crate::catalog::products::placeholders(0, part.len());
                    let sql = format!("SELECT id, ean FROM products WHERE deleted_at IS NULL AND ean IN {list}");
                    let mut q = sqlx::query_as::<_, (uuid::Uuid, String)>(&sql).persistent(false);
                    for i in part {
                        q = q.bind(items[*i].ean.as_ref().map(pm_domain::Gtin::as_str));
                    }
                    for (id, ean) in q.fetch_all(&mut **tx).await? {
                        if let Some((i, _)) = fresh.get(&ean) {
                            done[*i] = Some($crate::catalog::UpsertResult::Unchanged { id });
                        }
                    }
                }
            }
            let mut out = Vec::with_capacity(items.len());
            for (index, p) in items.iter().enumerate() {
                if let Some(r) = done[index].take() {
                    out.push(r);
                    continue;
                }
                let ean = p.ean.as_ref().map(pm_domain::Gtin::as_str);
                // Which known row a SKU designates: for an item without an EAN, the live
                // product with that SKU; for one with an EAN nobody has yet, the product known
                // so far by that SKU alone, which the EAN joins (never a duplicate).
                let by_sku: Option<Vec<uuid::Uuid>> = match (ean, p.sku.as_deref()) {
                    (None, Some(sku)) => Some(
                        sqlx::query_scalar(
                            "SELECT id FROM products WHERE deleted_at IS NULL AND lower(sku) = lower($1) \
                             ORDER BY id LIMIT 2",
                        )
                        .bind(sku)
                        .fetch_all(&mut **tx)
                        .await?,
                    ),
                    (Some(ean), Some(sku)) => Some(
                        sqlx::query_scalar(
                            // `coalesce(ean, '') = ''`: see `NO_EAN`.
                            "SELECT id FROM products WHERE deleted_at IS NULL AND coalesce(ean, '') = '' \
                             AND lower(sku) = lower($1) AND NOT EXISTS \
                             (SELECT 1 FROM products e WHERE e.ean = $2 AND e.deleted_at IS NULL) \
                             ORDER BY id LIMIT 2",
                        )
                        .bind(sku)
                        .bind(ean)
                        .fetch_all(&mut **tx)
                        .await?,
                    ),
                    _ => None,
                };
                let target = match by_sku.as_deref() {
                    Some([id]) => Some(*id),
                    Some([_, _, ..]) => {
                        let sku = p.sku.as_deref().unwrap_or_default();
                        out.push($crate::catalog::UpsertResult::Failed {
                            field: "sku",
                            message: if ean.is_some() {
                                format!("{sku:?} is the sku of several products without an ean: which one this ean belongs to is ambiguous")
                            } else {
                                format!("{sku:?} is the sku of several products: give the item its ean")
                            },
                        });
                        continue;
                    }
                    _ => None,
                };
                let title_key = pm_domain::text::sort_key(&p.title);
                let fresh = uuid::Uuid::now_v7();
                let sql = if target.is_some() { $crate::catalog::products::MERGE_INTO } else { $crate::catalog::products::UPSERT };
                let written: Option<uuid::Uuid> = sqlx::query_scalar(sql)
                    .bind(target.unwrap_or(fresh))
                    .bind(ean)
                    .bind(p.sku.as_deref())
                    .bind(p.asin.as_ref().map(pm_domain::Asin::as_str))
                    .bind(&p.title)
                    .bind(p.description.as_deref())
                    .bind(p.brand.as_deref())
                    .bind(p.brand_id)
                    .bind(p.primary_category_id)
                    .bind(p.status.as_str())
                    .bind(p.weight_grams)
                    .bind(p.length_mm)
                    .bind(p.width_mm)
                    .bind(p.height_mm)
                    .bind(sqlx::types::Json(&p.attributes))
                    .bind(now)
                    .bind(!p.attributes.is_empty())
                    .bind(&title_key)
                    .fetch_optional(&mut **tx)
                    .await?;
                out.push(match (written, target) {
                    (Some(id), _) if id == fresh => $crate::catalog::UpsertResult::Created { id },
                    (Some(id), _) => $crate::catalog::UpsertResult::Updated { id },
                    (None, Some(id)) => $crate::catalog::UpsertResult::Unchanged { id },
                    (None, None) => {
                        // The EAN's live row, which the guarded update left alone.
                        let id: uuid::Uuid = sqlx::query_scalar(
                            "SELECT id FROM products WHERE ean = $1 AND deleted_at IS NULL",
                        )
                        .bind(ean)
                        .fetch_one(&mut **tx)
                        .await?;
                        $crate::catalog::UpsertResult::Unchanged { id }
                    }
                });
            }
            out
    }};
}
pub(super) use upsert_items;

/// The refusals an upsert item gets before any statement: a brand or category that does not
/// exist, no key, an empty title, a negative dimension. `None`: the item goes on.
pub(super) fn upsert_check(
    p: &NewProduct,
    missing: &std::collections::HashMap<Uuid, StoreError>,
) -> Option<UpsertResult> {
    let dangling = [p.brand_id, p.primary_category_id]
        .into_iter()
        .flatten()
        .find_map(|id| missing.get(&id));
    if let Some(StoreError::Invalid { field, reason }) = dangling {
        return Some(UpsertResult::Failed {
            field,
            message: reason.clone(),
        });
    }
    if p.ean.is_none() && p.sku.is_none() {
        return Some(UpsertResult::Failed {
            field: "ean",
            message: "an ean or a sku is required to upsert".into(),
        });
    }
    if p.title.trim().is_empty() {
        return Some(UpsertResult::Failed {
            field: "title",
            message: "title must not be empty".into(),
        });
    }
    // The columns' CHECKs, asked here so that one bad item fails alone instead of aborting the
    // transaction.
    let negative = [
        ("weight_grams", p.weight_grams),
        ("length_mm", p.length_mm),
        ("width_mm", p.width_mm),
        ("height_mm", p.height_mm),
    ]
    .into_iter()
    .find(|(_, v)| v.is_some_and(|v| v < 0));
    negative.map(|(field, _)| UpsertResult::Failed {
        field,
        message: format!("{field} must not be negative"),
    })
}

/// Items of a batch that may be written by multi-row statements: keyed by an EAN that no other
/// item of the batch has, with a SKU (if any) that no SKU-keyed item of the batch has, so that
/// their order relative to the other items cannot change the outcome. (Whether they join a
/// product known by its SKU alone is asked of the database next.)
pub(super) fn fast_candidates(items: &[NewProduct], done: &[Option<UpsertResult>]) -> Vec<usize> {
    let mut eans: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut sku_keyed: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (p, d) in items.iter().zip(done) {
        if d.is_some() {
            continue;
        }
        match (&p.ean, &p.sku) {
            (Some(e), _) => *eans.entry(e.as_str()).or_default() += 1,
            (None, Some(k)) => {
                sku_keyed.insert(k.to_lowercase());
            }
            (None, None) => {}
        }
    }
    items
        .iter()
        .zip(done)
        .enumerate()
        .filter(|(_, (p, d))| {
            d.is_none()
                && p.ean.as_ref().is_some_and(|e| eans.get(e.as_str()) == Some(&1))
                && !p
                    .sku
                    .as_ref()
                    .is_some_and(|k| sku_keyed.contains(&k.to_lowercase()))
        })
        .map(|(i, _)| i)
        .collect()
}

/// `($1, $2, …)` with `n` placeholders after `used`.
pub(super) fn placeholders(used: usize, n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("${}", used + i)).collect();
    format!("({})", list.join(", "))
}

/// [`UPSERT`] for `rows` items at once (18 values each, in order: created_at and updated_at
/// are bound apart so that SQLite gets anonymous parameters, see
/// [`super::common::positional`]), returning `(id, ean)` of the rows written; `with_attrs`:
/// the items' attributes replace the stored ones.
pub(super) fn multi_upsert_sql(backend: crate::Backend, rows: usize, with_attrs: bool) -> String {
    let mut values = Vec::with_capacity(rows);
    for r in 0..rows {
        let p: Vec<String> = (1..=18).map(|i| format!("${}", r * 18 + i)).collect();
        values.push(format!("({})", p.join(", ")));
    }
    let flag = if with_attrs { "TRUE" } else { "FALSE" };
    let head = UPSERT.split_once("VALUES").map(|(h, _)| h).unwrap_or_default();
    let tail = UPSERT
        .split_once("ON CONFLICT")
        .map(|(_, t)| t)
        .unwrap_or_default()
        .replace("$17", flag)
        .replace("RETURNING id", "RETURNING id, ean");
    let sql = format!("{head}VALUES {} ON CONFLICT{tail}", values.join(", "));
    super::common::positional(backend, &sql).into_owned()
}

impl Catalog {
    /// `Invalid` naming the field unless the referenced brand and category exist: a product
    /// never points at nothing (the tables predate a foreign key; deleting a referenced brand
    /// or category is refused).
    pub(crate) async fn check_refs(
        &self,
        brand_id: Option<Uuid>,
        category_id: Option<Uuid>,
    ) -> Result<(), StoreError> {
        for (field, table, id) in [
            ("brand_id", "brands", brand_id),
            ("primary_category_id", "categories", category_id),
        ] {
            let Some(id) = id else { continue };
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE id = $1");
            let n: i64 = with_conn!(self.db, |conn| {
                sqlx::query_scalar(&sql).bind(id).fetch_one(&mut *conn).await?
            });
            if n == 0 {
                let what = if table == "brands" { "brand" } else { "category" };
                return Err(StoreError::Invalid {
                    field,
                    reason: format!("no {what} with id {id}"),
                });
            }
        }
        Ok(())
    }

    /// Products (live or in the trash) that reference `id` in `column`.
    pub(crate) async fn products_referencing(&self, column: &str, id: Uuid) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM products WHERE {column} = $1");
        Ok(with_conn!(self.db, |conn| {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(id)
                .fetch_one(&mut *conn)
                .await?
        }))
    }

    pub async fn create_product(&self, p: NewProduct) -> Result<Product, StoreError> {
        self.check_refs(p.brand_id, p.primary_category_id).await?;
        // UUIDv7: time-ordered, so the primary key is also the creation order that keyset
        // pagination walks.
        let id = Uuid::now_v7();
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO products (id, ean, sku, asin, title, description, brand, brand_id, \
             primary_category_id, status, weight_grams, length_mm, width_mm, height_mm, attributes, \
             created_at, updated_at, title_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17) \
             RETURNING {COLUMNS}"
        );
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(p.ean.as_ref().map(Gtin::as_str))
                .bind(p.sku.as_deref())
                .bind(p.asin.as_ref().map(Asin::as_str))
                .bind(&p.title)
                .bind(p.description.as_deref())
                .bind(p.brand.as_deref())
                .bind(p.brand_id)
                .bind(p.primary_category_id)
                .bind(p.status.as_str())
                .bind(p.weight_grams)
                .bind(p.length_mm)
                .bind(p.width_mm)
                .bind(p.height_mm)
                .bind(Json(&p.attributes))
                .bind(now)
                .bind(sort_key(&p.title))
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| map_unique(e, p.ean.as_ref()))?;
            product_from_row(&row)
        })
    }

    /// A live product.
    pub async fn get_product(&self, id: Uuid) -> Result<Product, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1 AND deleted_at IS NULL");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
            product_from_row(&row.ok_or_else(|| not_found(id))?)
        })
    }

    /// Applies `patch` to a live product in one statement that sets only the fields the patch
    /// carries, so concurrent patches of different fields never overwrite each other.
    ///
    /// With `if_version`, the write happens only if the product is still at that version
    /// (If-Match); otherwise it fails with [`StoreError::Stale`] and changes nothing.
    pub async fn update_product(
        &self,
        id: Uuid,
        patch: ProductPatch,
        if_version: Option<i64>,
    ) -> Result<Product, StoreError> {
        self.check_refs(patch.brand_id.flatten(), patch.primary_category_id.flatten())
            .await?;
        let ean = patch.ean.flatten();
        let mut sql = Sql::new("UPDATE products SET ");
        let set = |sql: &mut Sql, column: &str, a: Arg| {
            sql.push_arg(&format!("{column} = "), a, ", ");
        };
        if patch.ean.is_some() {
            set(&mut sql, "ean", Arg::Text(ean.map(|e| e.as_str().to_owned())));
        }
        if let Some(v) = patch.sku {
            set(&mut sql, "sku", Arg::Text(v));
        }
        if let Some(v) = patch.asin {
            set(&mut sql, "asin", Arg::Text(v.map(|a| a.as_str().to_owned())));
        }
        if let Some(v) = patch.title {
            set(&mut sql, "title_key", Arg::Text(Some(sort_key(&v))));
            set(&mut sql, "title", Arg::Text(Some(v)));
        }
        if let Some(v) = patch.description {
            set(&mut sql, "description", Arg::Text(v));
        }
        if let Some(v) = patch.brand {
            set(&mut sql, "brand", Arg::Text(v));
        }
        if let Some(v) = patch.brand_id {
            set(&mut sql, "brand_id", Arg::Uuid(v));
        }
        if let Some(v) = patch.primary_category_id {
            set(&mut sql, "primary_category_id", Arg::Uuid(v));
        }
        if let Some(v) = patch.status {
            set(&mut sql, "status", text(v.as_str()));
        }
        for (column, v) in [
            ("weight_grams", patch.weight_grams),
            ("length_mm", patch.length_mm),
            ("width_mm", patch.width_mm),
            ("height_mm", patch.height_mm),
        ] {
            if let Some(v) = v {
                set(&mut sql, column, Arg::Int(v));
            }
        }
        if let Some(v) = patch.attributes {
            set(&mut sql, "attributes", Arg::Json(v));
        }
        sql.push("version = version + 1, ");
        sql.push_arg("updated_at = ", Arg::Time(Some(Utc::now())), "");
        sql.push_arg(" WHERE id = ", Arg::Uuid(Some(id)), "");
        if let Some(v) = if_version {
            sql.push_arg(" AND version = ", Arg::BigInt(v), "");
        }
        sql.push(&format!(" AND deleted_at IS NULL RETURNING {COLUMNS}"));
        let written = with_conn!(self.db, |conn| {
            bind_args!(sqlx::query(&sql.text), &sql.args)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| map_unique(e, ean.as_ref()))?
                .map(|row| product_from_row(&row))
                .transpose()?
        });
        match written {
            Some(p) => Ok(p),
            None => Err(self.missing_or_stale(id, if_version).await),
        }
    }

    /// Why a conditional write of a live product touched nothing: it is gone (not found), or
    /// its version is no longer the one the caller read (stale).
    async fn missing_or_stale(&self, id: Uuid, if_version: Option<i64>) -> StoreError {
        if if_version.is_none() {
            return not_found(id);
        }
        match self.live_version(id).await {
            Ok(Some(current)) => StoreError::Stale {
                entity: "product",
                id: id.to_string(),
                current,
            },
            Ok(None) => not_found(id),
            Err(e) => e,
        }
    }

    /// The version of a live product, if there is one.
    async fn live_version(&self, id: Uuid) -> Result<Option<i64>, StoreError> {
        Ok(with_conn!(self.db, |conn| {
            sqlx::query_scalar::<_, i64>("SELECT version FROM products WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }))
    }

    /// Moves a live product to the trash. It keeps everything but its EAN's hold (see the
    /// module documentation) until [`Catalog::purge_trash`] removes it for good.
    /// With `if_version`, only if it is still at that version (see [`Catalog::update_product`]).
    pub async fn delete_product(&self, id: Uuid, if_version: Option<i64>) -> Result<(), StoreError> {
        let now = Utc::now();
        let done = with_conn!(self.db, |conn| {
            sqlx::query(
                "UPDATE products SET deleted_at = $1, updated_at = $1, version = version + 1 \
                 WHERE id = $2 AND deleted_at IS NULL AND ($3 IS NULL OR version = $3)",
            )
            .bind(now)
            .bind(id)
            .bind(if_version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(self.missing_or_stale(id, if_version).await);
        }
        Ok(())
    }

    /// Takes a product out of the trash. Fails with a conflict on `ean` when a live product
    /// has taken its EAN meanwhile, and with not found when it is not in the trash.
    pub async fn restore_product(&self, id: Uuid) -> Result<Product, StoreError> {
        let sql = format!(
            "UPDATE products SET deleted_at = NULL, updated_at = $1, version = version + 1 \
             WHERE id = $2 AND deleted_at IS NOT NULL RETURNING {COLUMNS}"
        );
        with_conn!(self.db, |conn| {
            let row = match sqlx::query(&sql)
                .bind(Utc::now())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
            {
                Ok(row) => row,
                Err(e) => {
                    // Name the EAN in the conflict: read it (the failed update changed nothing).
                    let ean: Option<String> = sqlx::query_scalar("SELECT ean FROM products WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?
                        .flatten();
                    let ean = ean.and_then(|s| Gtin::parse(&s).ok());
                    return Err(map_unique(e, ean.as_ref()));
                }
            };
            product_from_row(&row.ok_or_else(|| not_found(id))?)
        })
    }

    /// Hard-deletes the products that went to the trash more than `older_than` ago (the
    /// policy is 30 days; the caller passes it). Returns how many were removed.
    pub async fn purge_trash(&self, older_than: chrono::Duration) -> Result<u64, StoreError> {
        // A negative age counts as zero; an absurd one reaches back to 1970 at most (both
        // backends store that, unlike chrono's minimum).
        let cutoff = Utc::now()
            .checked_sub_signed(older_than.max(chrono::Duration::zero()))
            .unwrap_or(DateTime::UNIX_EPOCH)
            .max(DateTime::UNIX_EPOCH);
        Ok(with_conn!(self.db, |conn| {
            sqlx::query("DELETE FROM products WHERE deleted_at IS NOT NULL AND deleted_at < $1")
                .bind(cutoff)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        }))
    }

    /// Lists live products in creation order, `limit` at a time, after `cursor`.
    pub async fn list_products(
        &self,
        filter: &ProductFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Product>, StoreError> {
        self.list(Shelf::Live, filter, ProductSort::default(), limit, cursor)
            .await
    }

    /// Lists live products in the order of `sort`, `limit` at a time, after `cursor` (which
    /// must come from a page of the same sort).
    pub async fn list_products_sorted(
        &self,
        filter: &ProductFilter,
        sort: ProductSort,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Product>, StoreError> {
        self.list(Shelf::Live, filter, sort, limit, cursor).await
    }

    /// Which of these keys live products already have: EANs (canonical form) and SKUs
    /// (compared without regard to case; answered lower-cased). For a dry run's "would
    /// create / would update".
    pub async fn existing_keys(
        &self,
        eans: &[String],
        skus: &[String],
    ) -> Result<
        (
            std::collections::HashSet<String>,
            std::collections::HashSet<String>,
        ),
        StoreError,
    > {
        let mut found_eans = std::collections::HashSet::new();
        let mut found_skus = std::collections::HashSet::new();
        for chunk in eans.chunks(500) {
            let mut sql = Sql::new("SELECT ean FROM products WHERE deleted_at IS NULL AND ean IN (");
            for (i, e) in chunk.iter().enumerate() {
                sql.push_arg(if i == 0 { "" } else { ", " }, text(e), "");
            }
            sql.push(")");
            let rows: Vec<String> = with_conn!(self.db, |conn| {
                bind_args!(sqlx::query_scalar(&sql.text), &sql.args)
                    .fetch_all(&mut *conn)
                    .await?
            });
            found_eans.extend(rows);
        }
        for chunk in skus.chunks(500) {
            let mut sql =
                Sql::new("SELECT lower(sku) FROM products WHERE deleted_at IS NULL AND lower(sku) IN (");
            for (i, k) in chunk.iter().enumerate() {
                sql.push_arg(if i == 0 { "lower(" } else { ", lower(" }, text(k), ")");
            }
            sql.push(")");
            let rows: Vec<String> = with_conn!(self.db, |conn| {
                bind_args!(sqlx::query_scalar(&sql.text), &sql.args)
                    .fetch_all(&mut *conn)
                    .await?
            });
            found_skus.extend(rows);
        }
        Ok((found_eans, found_skus))
    }

    /// The live products with these SKUs (compared without regard to case), by lower-cased
    /// SKU; a SKU several products share is left out (it designates none of them).
    pub async fn ids_by_sku(
        &self,
        skus: &[String],
    ) -> Result<std::collections::HashMap<String, Uuid>, StoreError> {
        let mut found: std::collections::HashMap<String, Option<Uuid>> = std::collections::HashMap::new();
        for chunk in skus.chunks(500) {
            let mut sql =
                Sql::new("SELECT lower(sku), id FROM products WHERE deleted_at IS NULL AND lower(sku) IN (");
            for (i, k) in chunk.iter().enumerate() {
                sql.push_arg(if i == 0 { "lower(" } else { ", lower(" }, text(k), ")");
            }
            sql.push(")");
            let rows: Vec<(String, Uuid)> = with_conn!(self.db, |conn| {
                bind_args!(sqlx::query_as(&sql.text), &sql.args)
                    .fetch_all(&mut *conn)
                    .await?
            });
            for (sku, id) in rows {
                found
                    .entry(sku)
                    .and_modify(|e| {
                        if *e != Some(id) {
                            *e = None
                        }
                    })
                    .or_insert(Some(id));
            }
        }
        Ok(found.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }

    /// How many live products (or, with `trash`, products in the trash) match `filter`:
    /// exact up to [`EXACT_COUNT_LIMIT`] on PostgreSQL (the count stops there, so a broad
    /// filter over millions of rows costs a bounded scan), then the planner's estimate; exact
    /// up to [`EXACT_COUNT_LIMIT_SQLITE`] on SQLite, whose in-process count is cheap.
    pub async fn count_products(&self, filter: &ProductFilter, trash: bool) -> Result<Total, StoreError> {
        let bound = match self.db.backend() {
            crate::Backend::Postgres => EXACT_COUNT_LIMIT,
            crate::Backend::Sqlite => EXACT_COUNT_LIMIT_SQLITE,
        };
        self.count_products_up_to(filter, trash, bound).await
    }

    async fn count_products_up_to(
        &self,
        filter: &ProductFilter,
        trash: bool,
        bound: i64,
    ) -> Result<Total, StoreError> {
        let mut inner = Sql::new("SELECT 1 FROM products p WHERE ");
        inner.push(if trash {
            "p.deleted_at IS NOT NULL"
        } else {
            "p.deleted_at IS NULL"
        });
        push_filters(&mut inner, filter, Utc::now())?;
        let mut counted = Sql {
            text: format!("SELECT COUNT(*) FROM ({}", inner.text),
            args: inner.args.clone(),
        };
        counted.push_arg(" LIMIT ", Arg::BigInt(bound + 1), ") bounded");
        let n: i64 = with_conn!(self.db, |conn| {
            bind_args!(sqlx::query_scalar(&counted.text), &counted.args)
                .fetch_one(&mut *conn)
                .await?
        });
        if n <= bound {
            return Ok(Total {
                count: n,
                exact: true,
            });
        }
        let estimate = match self.db.backend() {
            crate::Backend::Postgres => self.planner_rows(&inner).await.unwrap_or(0),
            crate::Backend::Sqlite => 0,
        };
        Ok(Total {
            count: estimate.max(n),
            exact: false,
        })
    }

    /// The planner's row estimate for `sql` (PostgreSQL); `None` when it gives none.
    async fn planner_rows(&self, sql: &Sql) -> Option<i64> {
        let explain = format!("EXPLAIN (FORMAT JSON) {}", sql.text);
        let plan: Result<serde_json::Value, StoreError> = async {
            Ok(with_conn!(self.db, |conn| {
                let Json(v): Json<serde_json::Value> = bind_args!(sqlx::query_scalar(&explain), &sql.args)
                    .fetch_one(&mut *conn)
                    .await?;
                v
            }))
        }
        .await;
        match plan {
            Ok(v) => v[0]["Plan"]["Plan Rows"].as_f64().map(|r| r as i64),
            Err(e) => {
                tracing::debug!(error = %e, "no planner estimate for a product count");
                None
            }
        }
    }

    /// Lists the trash (same filters, sorts and cursors as the live list).
    pub async fn list_trash(
        &self,
        filter: &ProductFilter,
        sort: ProductSort,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Product>, StoreError> {
        self.list(Shelf::Trash, filter, sort, limit, cursor).await
    }

    async fn list(
        &self,
        shelf: Shelf,
        filter: &ProductFilter,
        sort: ProductSort,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Product>, StoreError> {
        let after = cursor.map(|c| decode_cursor(c, sort)).transpose()?;
        let mut sql = Sql::new(&format!("SELECT {P_COLUMNS} FROM products p WHERE "));
        sql.push(match shelf {
            Shelf::Live => "p.deleted_at IS NULL",
            Shelf::Trash => "p.deleted_at IS NOT NULL",
        });
        let (op, dir) = if sort.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        // Row comparison `(value, id) > (…)` is what the (value, id) indexes answer.
        match after {
            None => {}
            Some(After::Id(id)) => {
                sql.push_arg(&format!(" AND p.id {op} "), Arg::Uuid(Some(id)), "");
            }
            Some(After::Time(t, id)) => {
                let t = sql.arg(Arg::Time(Some(t)));
                let id = sql.arg(Arg::Uuid(Some(id)));
                sql.push(&format!(" AND (p.updated_at, p.id) {op} ({t}, {id})"));
            }
            Some(After::Text(s, id)) => {
                let s = sql.arg(Arg::Text(Some(s)));
                let id = sql.arg(Arg::Uuid(Some(id)));
                sql.push(&format!(" AND (p.title_key, p.id) {op} ({s}, {id})"));
            }
        }
        push_filters(&mut sql, filter, Utc::now())?;
        sql.push(&match sort.key {
            SortKey::Created => format!(" ORDER BY p.id {dir}"),
            SortKey::UpdatedAt => format!(" ORDER BY p.updated_at {dir}, p.id {dir}"),
            SortKey::Title => format!(" ORDER BY p.title_key {dir}, p.id {dir}"),
        });
        sql.push_arg(" LIMIT ", Arg::BigInt(i64::from(limit) + 1), "");
        let mut items = with_conn!(self.db, |conn| {
            let rows = bind_args!(sqlx::query(&sql.text), &sql.args)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(product_from_row).collect::<Result<Vec<_>, _>>()?
        });
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|p| encode_cursor(sort, p))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Creates or updates up to [`MAX_UPSERT_BATCH`] products in one transaction and says per
    /// item what happened (in input order). An item is keyed by its EAN, or by its SKU
    /// (compared without regard to case) when it has none; an EAN that arrives for a product
    /// known so far by its SKU alone joins that product. An item with neither, with a blank
    /// title, or whose SKU designates several products fails alone. An item that would change
    /// nothing writes nothing and is `Unchanged` (its product's `updated_at` and `version`
    /// stay). Items are applied in order, so when one key appears twice the later item updates
    /// what the earlier one created (later wins; both results name the same id).
    ///
    /// Created and updated are told apart without a read: the statement proposes a fresh id
    /// and returns the id of the row it wrote, which is the fresh one only if it inserted, and
    /// nothing when its guard found nothing to change.
    pub async fn upsert_products(&self, items: Vec<NewProduct>) -> Result<Vec<UpsertResult>, StoreError> {
        if items.len() > MAX_UPSERT_BATCH {
            return Err(StoreError::Invalid {
                field: "items",
                reason: format!(
                    "at most {MAX_UPSERT_BATCH} products per call, found {}",
                    items.len()
                ),
            });
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let missing = self.missing_refs(&items).await?;
        // Items keyed by SKU look a row up before writing it; on PostgreSQL two batches doing
        // that at once could both insert the same new SKU, so such batches take turns (SQLite
        // writers always do).
        let by_sku = items.iter().any(|p| p.sku.is_some());
        with_conn!(self.db, |conn| {
            let mut tx = if by_sku {
                conn.begin_locked(SKU_LOCK).await?
            } else {
                conn.begin_write().await?
            };
            let out = upsert_items!(tx, &items, &missing, now, self.db.backend());
            tx.commit().await?;
            Ok(out)
        })
    }
}

/// Helpers shared by the product and search tests.
#[cfg(test)]
pub(super) mod test_support {
    use super::*;
    use crate::testing::TestEnv;
    use crate::{Backend, Databases};
    use pm_config::Database;

    pub(in crate::catalog) async fn open(env: &TestEnv) -> (Databases, Catalog) {
        let dbs = Databases::open(&env.settings).await.unwrap();
        let cat = Catalog::new(dbs.get(Database::Catalog).clone());
        (dbs, cat)
    }

    pub(in crate::catalog) fn gtin(s: &str) -> Gtin {
        Gtin::parse(s).unwrap()
    }

    /// Runs one statement with `args`.
    pub(in crate::catalog) async fn exec(cat: &Catalog, sql: &str, args: Vec<Arg>) -> Result<(), StoreError> {
        with_conn!(cat.db(), |conn| {
            bind_args!(sqlx::query(sql), &args).execute(&mut *conn).await?;
        });
        Ok(())
    }

    /// Rows of the tables of migrations 0005-0007 (suppliers, categories, prices, stocks) that
    /// the list filters read, with just the columns those tables require.
    pub(in crate::catalog) async fn add_category(cat: &Catalog, id: Uuid, parent: Option<Uuid>, path: &str) {
        exec(
            cat,
            "INSERT INTO categories (id, parent_id, name, slug, path, slug_path, created_at, updated_at) \
             VALUES ($1, $2, $3, $3, $4, $3, $5, $5)",
            vec![
                uuid(id),
                Arg::Uuid(parent),
                txt(&id.to_string()),
                txt(path),
                Arg::Time(Some(Utc::now())),
            ],
        )
        .await
        .unwrap();
    }

    pub(in crate::catalog) async fn add_supplier(cat: &Catalog) -> Uuid {
        let id = Uuid::now_v7();
        exec(
            cat,
            "INSERT INTO suppliers (id, code, name, default_currency, created_at, updated_at) \
             VALUES ($1, $2, $2, 'EUR', $3, $3)",
            vec![uuid(id), txt(&id.to_string()), Arg::Time(Some(Utc::now()))],
        )
        .await
        .unwrap();
        id
    }

    pub(in crate::catalog) async fn add_supplier_product(cat: &Catalog, supplier: Uuid, product: Uuid) {
        exec(
            cat,
            "INSERT INTO supplier_products (id, supplier_id, product_id, supplier_sku, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
            vec![
                uuid(Uuid::now_v7()),
                uuid(supplier),
                uuid(product),
                txt(&product.to_string()),
                Arg::Time(Some(Utc::now())),
            ],
        )
        .await
        .unwrap();
    }

    pub(in crate::catalog) async fn add_price(
        cat: &Catalog,
        product: Uuid,
        (price_type, currency, amount): (&str, &str, &str),
        valid_from: Option<DateTime<Utc>>,
        valid_to: Option<DateTime<Utc>>,
    ) {
        // NUMERIC on PostgreSQL, decimal text on SQLite.
        let amount_sql = match cat.db().backend() {
            Backend::Postgres => "CAST($5 AS NUMERIC)",
            Backend::Sqlite => "$5",
        };
        exec(
            cat,
            &format!(
                "INSERT INTO product_prices (id, product_id, price_type, currency, amount, valid_from, valid_to, updated_at) \
                 VALUES ($1, $2, $3, $4, {amount_sql}, $6, $7, $8)"
            ),
            vec![
                uuid(Uuid::now_v7()),
                uuid(product),
                txt(price_type),
                txt(currency),
                txt(amount),
                Arg::Time(valid_from),
                Arg::Time(valid_to),
                Arg::Time(Some(Utc::now())),
            ],
        )
        .await
        .unwrap();
    }

    pub(in crate::catalog) async fn add_stock(cat: &Catalog, product: Uuid, warehouse: &str, quantity: i64) {
        exec(
            cat,
            "INSERT INTO product_stocks (id, product_id, warehouse, quantity, updated_at) VALUES ($1, $2, $3, $4, $5)",
            vec![
                uuid(Uuid::now_v7()),
                uuid(product),
                txt(warehouse),
                Arg::BigInt(quantity),
                Arg::Time(Some(Utc::now())),
            ],
        )
        .await
        .unwrap();
    }

    pub(in crate::catalog) fn uuid(u: Uuid) -> Arg {
        Arg::Uuid(Some(u))
    }

    pub(in crate::catalog) fn txt(s: &str) -> Arg {
        Arg::Text(Some(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::backends;
    use crate::Databases;
    use pm_config::Database;

    fn gtin(s: &str) -> Gtin {
        Gtin::parse(s).unwrap()
    }

    /// SQLite looks "no EAN, this SKU" up by the SKU index, not by walking every product
    /// without an EAN through the EAN index (see `NO_EAN`).
    #[tokio::test]
    async fn products_without_ean_are_found_by_their_sku_index() {
        for env in backends() {
            let (dbs, cat) = crate::catalog::common::testing::open(&env).await;
            if let crate::Pool::Sqlite(pool) = &cat.db.pool {
                let sql = format!(
                    "EXPLAIN QUERY PLAN SELECT lower(sku) FROM products WHERE deleted_at IS NULL \
                     AND {NO_EAN} AND lower(sku) IN (?, ?)"
                );
                let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&sql)
                    .bind("a")
                    .bind("b")
                    .fetch_all(pool)
                    .await
                    .unwrap();
                let detail: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
                assert!(
                    detail.iter().any(|d| d.contains("products_sku_lower")),
                    "{detail:?}"
                );
            }
            dbs.close().await;
        }
    }

    #[tokio::test]
    async fn product_crud_on_every_backend() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            let cat = Catalog::new(dbs.get(Database::Catalog).clone());
            let label = env.label;

            let p = cat
                .create_product(NewProduct {
                    ean: Some(gtin("887276302195")),
                    sku: Some("SKU-1".into()),
                    title: "Galaxy Tab".into(),
                    brand: Some("Samsung".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(p.ean.unwrap().as_str(), "0887276302195", "{label}");
            assert_eq!(p.status, ProductStatus::Draft);
            assert_eq!(cat.get_product(p.id).await.unwrap(), p, "{label}");

            // The same GTIN spelled as EAN-13 is the same product: refused.
            let dup = cat
                .create_product(NewProduct {
                    ean: Some(gtin("0887276302195")),
                    title: "x".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert!(
                matches!(dup, StoreError::Conflict { field: "ean", .. }),
                "{label}: {dup:?}"
            );

            // Patch: set some fields, clear one, leave the rest.
            let patched = cat
                .update_product(
                    p.id,
                    ProductPatch {
                        title: Some("Galaxy Tab S".into()),
                        brand: Some(None),
                        asin: Some(Some(Asin::parse("B07N4M94X4").unwrap())),
                        status: Some(ProductStatus::Active),
                        ..Default::default()
                    },
                    None,
                )
                .await
                .unwrap();
            assert_eq!(patched.title, "Galaxy Tab S");
            assert_eq!(patched.brand, None);
            assert_eq!(patched.sku.as_deref(), Some("SKU-1"));
            assert_eq!(patched.asin.as_ref().unwrap().as_str(), "B07N4M94X4");
            assert_eq!(patched.status, ProductStatus::Active);
            assert!(patched.updated_at >= p.updated_at);
            assert_eq!(patched.created_at, p.created_at, "{label}");

            cat.delete_product(p.id, None).await.unwrap();
            assert!(matches!(
                cat.get_product(p.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                cat.delete_product(p.id, None).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                cat.update_product(p.id, ProductPatch::default(), None).await,
                Err(StoreError::NotFound { .. })
            ));
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn keyset_pagination_walks_everything_once_with_filters() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            let cat = Catalog::new(dbs.get(Database::Catalog).clone());
            let mut ids = Vec::new();
            for i in 0..7 {
                let status = if i % 2 == 0 {
                    ProductStatus::Active
                } else {
                    ProductStatus::Draft
                };
                let p = cat
                    .create_product(NewProduct {
                        title: format!("p{i}"),
                        status,
                        sku: Some(format!("S{i}")),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                ids.push(p.id);
            }
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = cat
                    .list_products(&ProductFilter::default(), 3, cursor.as_deref())
                    .await
                    .unwrap();
                assert!(page.items.len() <= 3);
                seen.extend(page.items.iter().map(|p| p.id));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen, ids, "{}", env.label);
            let active = cat
                .list_products(
                    &ProductFilter {
                        status: Some(ProductStatus::Active),
                        ..Default::default()
                    },
                    100,
                    None,
                )
                .await
                .unwrap();
            assert_eq!(active.items.len(), 4);
            let by_sku = cat
                .list_products(
                    &ProductFilter {
                        sku: Some("S3".into()),
                        ..Default::default()
                    },
                    100,
                    None,
                )
                .await
                .unwrap();
            assert_eq!(by_sku.items.len(), 1);
            assert!(matches!(
                cat.list_products(&ProductFilter::default(), 3, Some("not-a-cursor"))
                    .await,
                Err(StoreError::BadCursor)
            ));
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn migrations_are_idempotent_and_databases_report_health() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            dbs.close().await;
            // A second start finds everything in place.
            let dbs = Databases::open(&env.settings).await.unwrap();
            for (db, d) in dbs.dbs.iter() {
                assert!(d.ping().await.is_ok(), "{} {db}", env.label);
                let s = d.stats();
                assert_eq!(s.configured, 2);
                assert_eq!(s.waiting, 0);
            }
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn a_database_holding_another_schema_is_refused() {
        for env in backends() {
            let dbs = Databases::open(&env.settings).await.unwrap();
            dbs.close().await;
            // Point `media` at the catalog database.
            let mut s = env.settings.clone();
            match s.database_location(Database::Catalog) {
                pm_config::DatabaseLocation::Sqlite(_) => {
                    s.storage.data_dir = env.settings.storage.data_dir.clone();
                    let dir = &s.storage.data_dir;
                    std::fs::copy(dir.join("catalog.db"), dir.join("media.db")).ok();
                    // The catalog's schema may still sit in its write-ahead log (a closed pool
                    // does not promise a checkpoint): the copy takes the log along.
                    let _ = std::fs::remove_file(dir.join("media.db-wal"));
                    let _ = std::fs::remove_file(dir.join("media.db-shm"));
                    if dir.join("catalog.db-wal").exists() {
                        std::fs::copy(dir.join("catalog.db-wal"), dir.join("media.db-wal")).ok();
                    }
                }
                pm_config::DatabaseLocation::Postgres { url, .. } => {
                    s.database.urls.media = Some(url);
                }
            }
            let err = crate::Db::open(&s, Database::Media).await.unwrap_err();
            assert!(
                matches!(err, StoreError::WrongDatabase { ref found, .. } if found == "catalog"),
                "{}: {err}",
                env.label
            );
            env.cleanup().await;
        }
    }

    use super::test_support::{
        add_category, add_price, add_stock, add_supplier, add_supplier_product, exec, open, uuid,
    };
    use chrono::Duration;

    fn attrs(v: serde_json::Value) -> Attributes {
        match v {
            serde_json::Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// Walks every page of `sort` (`limit` at a time) and returns the ids in order.
    async fn walk(
        cat: &Catalog,
        filter: &ProductFilter,
        sort: ProductSort,
        limit: u32,
        trash: bool,
    ) -> Vec<Uuid> {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = if trash {
                cat.list_trash(filter, sort, limit, cursor.as_deref()).await
            } else {
                cat.list_products_sorted(filter, sort, limit, cursor.as_deref())
                    .await
            }
            .unwrap();
            assert!(page.items.len() <= limit as usize);
            seen.extend(page.items.iter().map(|p| p.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
            assert!(seen.len() < 1000, "pagination does not end");
        }
        seen
    }

    async fn ids(cat: &Catalog, filter: ProductFilter) -> Vec<Uuid> {
        let mut v: Vec<Uuid> = cat
            .list_products(&filter, 100, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| p.id)
            .collect();
        v.sort();
        v
    }

    fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
        v.sort();
        v
    }

    #[tokio::test]
    async fn extended_fields_round_trip() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let label = env.label;
            let brand_id = cat
                .create_brand(crate::catalog::NewBrand {
                    name: "Round trip".into(),
                    slug: Some("round-trip".into()),
                })
                .await
                .unwrap()
                .id;
            let category = cat
                .create_category(crate::catalog::NewCategory {
                    parent_id: None,
                    name: "Round trip".into(),
                    slug: Some("round-trip".into()),
                })
                .await
                .unwrap()
                .id;
            let new = NewProduct {
                ean: Some(gtin("4006381333931")),
                sku: Some("SKU-X".into()),
                asin: Some(Asin::parse("B07N4M94X4").unwrap()),
                title: "Stabilo pen".into(),
                description: Some("a pen".into()),
                brand: Some("Stabilo".into()),
                brand_id: Some(brand_id),
                primary_category_id: Some(category),
                status: ProductStatus::Active,
                weight_grams: Some(12),
                length_mm: Some(150),
                width_mm: Some(10),
                height_mm: Some(0),
                attributes: attrs(
                    serde_json::json!({"colour": "blue", "pack": 10, "tags": ["a", "b"], "nested": {"x": null}}),
                ),
            };
            let p = cat.create_product(new.clone()).await.unwrap();
            assert_eq!(p.brand_id, Some(brand_id), "{label}");
            assert_eq!(p.primary_category_id, Some(category));
            assert_eq!(
                (p.weight_grams, p.length_mm, p.width_mm, p.height_mm),
                (Some(12), Some(150), Some(10), Some(0))
            );
            assert_eq!(p.attributes, new.attributes, "{label}");
            assert_eq!(p.deleted_at, None);
            assert_eq!(cat.get_product(p.id).await.unwrap(), p, "{label}");

            // Defaults: no measures, an empty object.
            let bare = cat
                .create_product(NewProduct {
                    title: "bare".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert!(bare.attributes.is_empty());
            assert_eq!(bare.weight_grams, None);

            // Patch the new fields: set, clear, replace, leave.
            let q = cat
                .update_product(
                    p.id,
                    ProductPatch {
                        brand_id: Some(None),
                        weight_grams: Some(Some(13)),
                        height_mm: Some(None),
                        attributes: Some(attrs(serde_json::json!({"colour": "red"}))),
                        ..Default::default()
                    },
                    None,
                )
                .await
                .unwrap();
            assert_eq!(q.brand_id, None, "{label}");
            assert_eq!(q.primary_category_id, Some(category));
            assert_eq!(q.weight_grams, Some(13));
            assert_eq!(q.length_mm, Some(150));
            assert_eq!(q.height_mm, None);
            assert_eq!(q.attributes, attrs(serde_json::json!({"colour": "red"})));
            assert_eq!(q.title, "Stabilo pen");
            assert_eq!(q.ean, p.ean);
            assert_eq!(cat.get_product(p.id).await.unwrap(), q, "{label}");

            // Every field at once, through the one statement.
            let r = cat
                .update_product(
                    p.id,
                    ProductPatch {
                        ean: Some(None),
                        sku: Some(None),
                        asin: Some(None),
                        title: Some("t".into()),
                        description: Some(None),
                        brand: Some(None),
                        brand_id: Some(Some(brand_id)),
                        primary_category_id: Some(None),
                        status: Some(ProductStatus::Inactive),
                        weight_grams: Some(None),
                        length_mm: Some(None),
                        width_mm: Some(Some(11)),
                        height_mm: Some(Some(12)),
                        attributes: Some(Attributes::new()),
                    },
                    None,
                )
                .await
                .unwrap();
            assert_eq!(
                (
                    r.ean,
                    r.sku.clone(),
                    r.asin.clone(),
                    r.description.clone(),
                    r.brand.clone()
                ),
                (None, None, None, None, None),
                "{label}"
            );
            assert_eq!((r.brand_id, r.primary_category_id), (Some(brand_id), None));
            assert_eq!(r.status, ProductStatus::Inactive);
            assert_eq!(
                (r.weight_grams, r.length_mm, r.width_mm, r.height_mm),
                (None, None, Some(11), Some(12))
            );
            assert!(r.attributes.is_empty());
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn soft_delete_restore_trash_and_purge() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let label = env.label;
            let ean = gtin("4006381333931");
            let a = cat
                .create_product(NewProduct {
                    ean: Some(ean),
                    title: "a".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let other = cat
                .create_product(NewProduct {
                    title: "other".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            cat.delete_product(a.id, None).await.unwrap();
            assert!(matches!(
                cat.get_product(a.id).await,
                Err(StoreError::NotFound { .. })
            ));
            assert_eq!(
                ids(&cat, ProductFilter::default()).await,
                vec![other.id],
                "{label}"
            );
            let trash = cat
                .list_trash(&ProductFilter::default(), ProductSort::default(), 10, None)
                .await
                .unwrap();
            assert_eq!(trash.items.len(), 1, "{label}");
            assert_eq!(trash.items[0].id, a.id);
            assert!(trash.items[0].deleted_at.is_some());
            // Trashed products cannot be patched or deleted again.
            assert!(matches!(
                cat.update_product(a.id, ProductPatch::default(), None).await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                cat.delete_product(a.id, None).await,
                Err(StoreError::NotFound { .. })
            ));
            // Restoring a live product: not found (it is not in the trash).
            assert!(matches!(
                cat.restore_product(other.id).await,
                Err(StoreError::NotFound { .. })
            ));

            // The trashed product does not hold its EAN…
            let b = cat
                .create_product(NewProduct {
                    ean: Some(ean),
                    title: "b".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            // …but two live products still cannot share one.
            let dup = cat
                .create_product(NewProduct {
                    ean: Some(ean),
                    title: "c".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert!(
                matches!(dup, StoreError::Conflict { field: "ean", .. }),
                "{label}: {dup:?}"
            );
            let dup = cat
                .update_product(
                    other.id,
                    ProductPatch {
                        ean: Some(Some(ean)),
                        ..Default::default()
                    },
                    None,
                )
                .await
                .unwrap_err();
            assert!(
                matches!(dup, StoreError::Conflict { field: "ean", .. }),
                "{label}: {dup:?}"
            );
            // Restoring `a` now would make two live products with one EAN: conflict, named.
            let err = cat.restore_product(a.id).await.unwrap_err();
            match &err {
                StoreError::Conflict { field, value, .. } => {
                    assert_eq!((*field, value.as_str()), ("ean", "4006381333931"), "{label}");
                }
                e => panic!("{label}: {e:?}"),
            }
            // Once `b` is gone, `a` comes back.
            cat.delete_product(b.id, None).await.unwrap();
            let back = cat.restore_product(a.id).await.unwrap();
            assert_eq!(back.deleted_at, None);
            assert_eq!(back.ean, Some(ean));
            assert!(back.updated_at >= a.updated_at);
            assert_eq!(cat.get_product(a.id).await.unwrap(), back, "{label}");

            // Purge: only what has been in the trash longer than asked.
            assert_eq!(cat.purge_trash(Duration::days(30)).await.unwrap(), 0, "{label}");
            cat.delete_product(other.id, None).await.unwrap();
            let old = Utc::now() - Duration::days(31);
            exec(
                &cat,
                "UPDATE products SET deleted_at = $1 WHERE id = $2",
                vec![Arg::Time(Some(old)), uuid(other.id)],
            )
            .await
            .unwrap();
            assert_eq!(cat.purge_trash(Duration::days(30)).await.unwrap(), 1, "{label}");
            let trash = walk(&cat, &ProductFilter::default(), ProductSort::default(), 1, true).await;
            assert_eq!(trash, vec![b.id], "{label}");
            // `b` went to the trash a moment ago: older than zero, so purged now.
            assert_eq!(cat.purge_trash(Duration::zero()).await.unwrap(), 1, "{label}");
            assert!(
                walk(&cat, &ProductFilter::default(), ProductSort::default(), 1, true)
                    .await
                    .is_empty()
            );
            // An absurd duration does not overflow.
            assert_eq!(cat.purge_trash(Duration::MAX).await.unwrap(), 0);
            assert_eq!(ids(&cat, ProductFilter::default()).await, vec![a.id], "{label}");
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn every_filter() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let label = env.label;
            let (root, child, grandchild, elsewhere) =
                (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
            for (id, parent, path) in [
                (root, None, format!("/{root}/")),
                (child, Some(root), format!("/{root}/{child}/")),
                (grandchild, Some(child), format!("/{root}/{child}/{grandchild}/")),
                (elsewhere, None, format!("/{elsewhere}/")),
            ] {
                add_category(&cat, id, parent, &path).await;
            }
            let brand = cat
                .create_brand(crate::catalog::NewBrand {
                    name: "Filter brand".into(),
                    slug: Some("filter-brand".into()),
                })
                .await
                .unwrap()
                .id;
            let mk = |title: &str, ean: Option<&str>| NewProduct {
                title: title.into(),
                ean: ean.map(gtin),
                ..Default::default()
            };
            let p1 = cat
                .create_product(NewProduct {
                    primary_category_id: Some(grandchild),
                    status: ProductStatus::Active,
                    sku: Some("S1".into()),
                    ..mk("p1", Some("4006381333931"))
                })
                .await
                .unwrap()
                .id;
            let p2 = cat
                .create_product(NewProduct {
                    brand_id: Some(brand),
                    ..mk("p2", None)
                })
                .await
                .unwrap()
                .id;
            let p3 = cat
                .create_product(NewProduct {
                    primary_category_id: Some(elsewhere),
                    asin: Some(Asin::parse("B07N4M94X4").unwrap()),
                    ..mk("p3", None)
                })
                .await
                .unwrap()
                .id;
            let p4 = cat.create_product(mk("p4", None)).await.unwrap().id;
            // A trashed product matches nothing.
            let gone = cat
                .create_product(NewProduct {
                    primary_category_id: Some(root),
                    ..mk("gone", None)
                })
                .await
                .unwrap()
                .id;
            exec(
                &cat,
                "INSERT INTO product_categories (product_id, category_id, taxonomy) VALUES ($1, $2, 'internal')",
                vec![uuid(p2), uuid(child)],
            )
            .await
            .unwrap();
            let supplier = add_supplier(&cat).await;
            let other_supplier = add_supplier(&cat).await;
            for p in [p1, p3, gone] {
                add_supplier_product(&cat, supplier, p).await;
            }
            add_supplier_product(&cat, other_supplier, p2).await;
            let now = Utc::now();
            let days = |n| Some(now - Duration::days(n));
            add_price(&cat, p1, ("retail", "EUR", "19.99"), days(10), None).await;
            add_price(&cat, p2, ("retail", "EUR", "5.00"), None, None).await;
            // expired, and not yet valid: neither counts
            add_price(&cat, p2, ("retail", "EUR", "50"), days(20), days(1)).await;
            add_price(
                &cat,
                p2,
                ("retail", "EUR", "60"),
                Some(now + Duration::days(1)),
                None,
            )
            .await;
            add_price(&cat, p3, ("cost", "EUR", "10"), days(10), None).await;
            add_price(&cat, p4, ("retail", "USD", "15"), days(10), None).await;
            add_price(&cat, gone, ("retail", "EUR", "12"), days(10), None).await;
            for (p, w, q) in [
                (p1, "w1", 3),
                (p1, "w2", 0),
                (p2, "w1", 0),
                (p3, "w1", 0),
                (p3, "w2", 0),
                (gone, "w1", 5),
            ] {
                add_stock(&cat, p, w, q).await;
            }
            cat.delete_product(gone, None).await.unwrap();
            let since = Utc::now();
            cat.update_product(
                p4,
                ProductPatch {
                    description: Some(Some("changed".into())),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();

            let f = ProductFilter::default;
            assert_eq!(ids(&cat, f()).await, sorted(vec![p1, p2, p3, p4]), "{label}");
            let cases: Vec<(&str, ProductFilter, Vec<Uuid>)> = vec![
                (
                    "status",
                    ProductFilter {
                        status: Some(ProductStatus::Active),
                        ..f()
                    },
                    vec![p1],
                ),
                (
                    "ean",
                    ProductFilter {
                        ean: Some(gtin("4006381333931")),
                        ..f()
                    },
                    vec![p1],
                ),
                (
                    "sku",
                    ProductFilter {
                        sku: Some("S1".into()),
                        ..f()
                    },
                    vec![p1],
                ),
                (
                    "sku nul",
                    ProductFilter {
                        sku: Some("S\u{0}1".into()),
                        ..f()
                    },
                    vec![],
                ),
                (
                    "asin",
                    ProductFilter {
                        asin: Some(Asin::parse("b07n4m94x4").unwrap()),
                        ..f()
                    },
                    vec![p3],
                ),
                (
                    "has asin",
                    ProductFilter {
                        has_asin: Some(true),
                        ..f()
                    },
                    vec![p3],
                ),
                (
                    "no asin",
                    ProductFilter {
                        has_asin: Some(false),
                        ..f()
                    },
                    vec![p1, p2, p4],
                ),
                (
                    "brand",
                    ProductFilter {
                        brand_id: Some(brand),
                        ..f()
                    },
                    vec![p2],
                ),
                (
                    "supplier",
                    ProductFilter {
                        supplier_id: Some(supplier),
                        ..f()
                    },
                    vec![p1, p3],
                ),
                (
                    "root subtree",
                    ProductFilter {
                        category_id: Some(root),
                        ..f()
                    },
                    vec![p1, p2],
                ),
                (
                    "child subtree",
                    ProductFilter {
                        category_id: Some(child),
                        ..f()
                    },
                    vec![p1, p2],
                ),
                (
                    "leaf",
                    ProductFilter {
                        category_id: Some(grandchild),
                        ..f()
                    },
                    vec![p1],
                ),
                (
                    "elsewhere",
                    ProductFilter {
                        category_id: Some(elsewhere),
                        ..f()
                    },
                    vec![p3],
                ),
                (
                    "unknown category",
                    ProductFilter {
                        category_id: Some(Uuid::now_v7()),
                        ..f()
                    },
                    vec![],
                ),
                (
                    "min price",
                    ProductFilter {
                        price: Some(PriceRange {
                            currency: "EUR".into(),
                            min: Some("10".into()),
                            ..Default::default()
                        }),
                        ..f()
                    },
                    vec![p1],
                ),
                (
                    "max price",
                    ProductFilter {
                        price: Some(PriceRange {
                            currency: "EUR".into(),
                            max: Some("10.0".into()),
                            ..Default::default()
                        }),
                        ..f()
                    },
                    vec![p2],
                ),
                (
                    "inclusive range",
                    ProductFilter {
                        price: Some(PriceRange {
                            currency: "EUR".into(),
                            min: Some("5".into()),
                            max: Some("19.99".into()),
                            price_type: None,
                        }),
                        ..f()
                    },
                    vec![p1, p2],
                ),
                (
                    "price type",
                    ProductFilter {
                        price: Some(PriceRange {
                            currency: "EUR".into(),
                            price_type: Some("cost".into()),
                            min: Some("-1".into()),
                            max: None,
                        }),
                        ..f()
                    },
                    vec![p3],
                ),
                (
                    "currency",
                    ProductFilter {
                        price: Some(PriceRange {
                            currency: "USD".into(),
                            ..Default::default()
                        }),
                        ..f()
                    },
                    vec![p4],
                ),
                (
                    "in stock",
                    ProductFilter {
                        in_stock: Some(true),
                        ..f()
                    },
                    vec![p1],
                ),
                (
                    "out of stock",
                    ProductFilter {
                        in_stock: Some(false),
                        ..f()
                    },
                    vec![p2, p3, p4],
                ),
                (
                    "updated since",
                    ProductFilter {
                        updated_since: Some(since),
                        ..f()
                    },
                    vec![p4],
                ),
                (
                    "combined",
                    ProductFilter {
                        supplier_id: Some(supplier),
                        in_stock: Some(true),
                        category_id: Some(root),
                        ..f()
                    },
                    vec![p1],
                ),
            ];
            for (what, filter, want) in cases {
                assert_eq!(ids(&cat, filter.clone()).await, sorted(want), "{label}: {what}");
                // The trash filters the same way: only `gone` is there.
                let trash = walk(&cat, &filter, ProductSort::default(), 10, true).await;
                assert!(trash.is_empty() || trash == vec![gone], "{label}: {what}");
            }
            let trash = walk(
                &cat,
                &ProductFilter {
                    supplier_id: Some(supplier),
                    ..f()
                },
                ProductSort::default(),
                10,
                true,
            )
            .await;
            assert_eq!(trash, vec![gone], "{label}");

            // Bad price input is refused naming the field, never sent to the database.
            for (range, field) in [
                (
                    PriceRange {
                        currency: "EUR".into(),
                        min: Some("abc".into()),
                        ..Default::default()
                    },
                    "min_price",
                ),
                (
                    PriceRange {
                        currency: "EUR".into(),
                        max: Some("1e5".into()),
                        ..Default::default()
                    },
                    "max_price",
                ),
                (
                    PriceRange {
                        currency: "EUR".into(),
                        min: Some("1.23456".into()),
                        ..Default::default()
                    },
                    "min_price",
                ),
                (
                    PriceRange {
                        currency: "EUR".into(),
                        min: Some(".5".into()),
                        ..Default::default()
                    },
                    "min_price",
                ),
                (
                    PriceRange {
                        currency: "EUR".into(),
                        price_type: Some("list".into()),
                        ..Default::default()
                    },
                    "price_type",
                ),
            ] {
                let err = cat
                    .list_products(
                        &ProductFilter {
                            price: Some(range),
                            ..f()
                        },
                        10,
                        None,
                    )
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err, StoreError::Invalid { field: got, .. } if got == field),
                    "{label}: {err:?}"
                );
            }
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn every_sort_paginates_everything_once() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let label = env.label;
            // Case and accents do not change the order (the same on both backends).
            let titles = ["delta", "Alpha", "Écho", "alpha", "bravo", "echo", "ÀLPHA"];
            let mut created = Vec::new();
            for t in titles {
                created.push(
                    cat.create_product(NewProduct {
                        title: t.into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .id,
                );
            }
            // Change the update order against the creation order.
            for i in [3, 0, 5] {
                cat.update_product(
                    created[i],
                    ProductPatch {
                        description: Some(Some("x".into())),
                        ..Default::default()
                    },
                    None,
                )
                .await
                .unwrap();
            }
            let mut all = Vec::new();
            for id in &created {
                all.push(cat.get_product(*id).await.unwrap());
            }
            for key in [SortKey::Created, SortKey::UpdatedAt, SortKey::Title] {
                for descending in [false, true] {
                    let sort = ProductSort { key, descending };
                    let mut want = all.clone();
                    match key {
                        SortKey::Created => want.sort_by_key(|p| p.id),
                        SortKey::UpdatedAt => want.sort_by_key(|p| (p.updated_at, p.id)),
                        SortKey::Title => want.sort_by_key(|p| (sort_key(&p.title), p.id)),
                    }
                    if descending {
                        want.reverse();
                    }
                    let want: Vec<Uuid> = want.iter().map(|p| p.id).collect();
                    for limit in [1, 2, 3, 7, 50] {
                        let got = walk(&cat, &ProductFilter::default(), sort, limit, false).await;
                        assert_eq!(got, want, "{label}: {sort} by {limit}");
                    }
                    // A page exactly at the end has no cursor.
                    let page = cat
                        .list_products_sorted(&ProductFilter::default(), sort, 7, None)
                        .await
                        .unwrap();
                    assert_eq!(page.next_cursor, None);
                }
            }
            // With a filter too.
            let alphas = walk(
                &cat,
                &ProductFilter {
                    sku: None,
                    ..Default::default()
                },
                "-title".parse().unwrap(),
                1,
                false,
            )
            .await;
            assert_eq!(alphas.len(), 7, "{label}");
            let ascending: Vec<String> = walk(
                &cat,
                &ProductFilter::default(),
                "title".parse().unwrap(),
                3,
                false,
            )
            .await
            .iter()
            .map(|id| all.iter().find(|p| p.id == *id).unwrap().title.clone())
            .collect();
            assert_eq!(
                ascending[..3].iter().map(|t| sort_key(t)).collect::<Vec<_>>(),
                ["alpha", "alpha", "alpha"],
                "{label}: {ascending:?}"
            );
            assert_eq!(
                ascending[3..].iter().map(String::as_str).collect::<Vec<_>>()[..2],
                ["bravo", "delta"],
                "{label}"
            );
            assert_eq!(
                "updated_at".parse::<ProductSort>().unwrap().key,
                SortKey::UpdatedAt
            );
            assert!("price".parse::<ProductSort>().is_err());
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn tampered_cursors_are_refused() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let label = env.label;
            for i in 0..3 {
                cat.create_product(NewProduct {
                    title: format!("t{i}"),
                    ..Default::default()
                })
                .await
                .unwrap();
            }
            let f = ProductFilter::default();
            let by = |key, descending| ProductSort { key, descending };
            let title_cursor = cat
                .list_products_sorted(&f, by(SortKey::Title, false), 1, None)
                .await
                .unwrap()
                .next_cursor
                .unwrap();
            let updated_cursor = cat
                .list_products_sorted(&f, by(SortKey::UpdatedAt, true), 1, None)
                .await
                .unwrap()
                .next_cursor
                .unwrap();
            let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
            let id = Uuid::now_v7();
            let bad: Vec<(String, ProductSort)> = vec![
                ("zzz".into(), ProductSort::default()),
                ("".into(), ProductSort::default()),
                ("!!!".into(), ProductSort::default()),
                (id.to_string(), ProductSort::default()),
                (enc("{}"), ProductSort::default()),
                (enc("not json"), ProductSort::default()),
                (
                    enc(&format!(r#"{{"s":"title","id":"{id}"}}"#)),
                    by(SortKey::Title, false),
                ),
                (
                    enc(&format!(r#"{{"s":"created","v":"x","id":"{id}"}}"#)),
                    ProductSort::default(),
                ),
                (enc(r#"{"s":"created","id":"nope"}"#), ProductSort::default()),
                (
                    enc(&format!(r#"{{"s":"-updated_at","v":"yesterday","id":"{id}"}}"#)),
                    by(SortKey::UpdatedAt, true),
                ),
                // A cursor of another sort or direction.
                (title_cursor.clone(), ProductSort::default()),
                (title_cursor.clone(), by(SortKey::Title, true)),
                (updated_cursor.clone(), by(SortKey::UpdatedAt, false)),
                // Truncated.
                (
                    title_cursor[..title_cursor.len() - 3].to_owned(),
                    by(SortKey::Title, false),
                ),
            ];
            for (cursor, sort) in bad {
                let got = cat.list_products_sorted(&f, sort, 2, Some(&cursor)).await;
                assert!(
                    matches!(got, Err(StoreError::BadCursor)),
                    "{label}: {cursor:?} {sort}: {got:?}"
                );
            }
            // A well-formed cursor at a position that matches no row is just a position.
            let c = enc(&format!(r#"{{"s":"title","v":"zzz","id":"{id}"}}"#));
            let page = cat
                .list_products_sorted(&f, by(SortKey::Title, false), 2, Some(&c))
                .await
                .unwrap();
            assert!(page.items.is_empty());
            // Trailing padding is tolerated.
            let padded = format!("{title_cursor}==");
            assert!(cat
                .list_products_sorted(&f, by(SortKey::Title, false), 2, Some(&padded))
                .await
                .is_ok());
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn bulk_upserts_key_by_sku_and_leave_unchanged_rows_alone() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let item = |ean: Option<&str>, sku: Option<&str>, title: &str| NewProduct {
                ean: ean.map(gtin),
                sku: sku.map(Into::into),
                title: title.into(),
                ..Default::default()
            };
            // A supplier without barcodes: keyed by SKU, created once, then found again
            // whatever the case of the SKU.
            let r = cat
                .upsert_products(vec![item(None, Some("TSHIRT-RED-M"), "T-shirt rouge M")])
                .await
                .unwrap();
            let UpsertResult::Created { id: shirt } = r[0] else {
                panic!("{l}: {r:?}")
            };
            let before = cat.get_product(shirt).await.unwrap();
            assert_eq!(before.version, 1, "{l}");
            let r = cat
                .upsert_products(vec![
                    item(None, Some("tshirt-red-m"), "T-shirt rouge M"),
                    item(None, Some("TSHIRT-RED-M"), "T-shirt rouge (M)"),
                ])
                .await
                .unwrap();
            assert_eq!(
                r,
                [
                    UpsertResult::Unchanged { id: shirt },
                    UpsertResult::Updated { id: shirt }
                ],
                "{l}"
            );
            let after = cat.get_product(shirt).await.unwrap();
            assert_eq!(
                (after.version, after.sku.as_deref()),
                (2, Some("TSHIRT-RED-M")),
                "{l}"
            );

            // Its EAN arrives later: it joins the same product, never a duplicate.
            let r = cat
                .upsert_products(vec![item(
                    Some("4006381333931"),
                    Some("TSHIRT-RED-M"),
                    "T-shirt rouge (M)",
                )])
                .await
                .unwrap();
            assert_eq!(r, [UpsertResult::Updated { id: shirt }], "{l}");
            let joined = cat.get_product(shirt).await.unwrap();
            assert_eq!(joined.ean, Some(gtin("4006381333931")), "{l}");
            // From now on the EAN keys it; the same values again change nothing: updated_at
            // and version stay.
            let r = cat
                .upsert_products(vec![item(Some("4006381333931"), None, "T-shirt rouge (M)")])
                .await
                .unwrap();
            assert_eq!(r, [UpsertResult::Unchanged { id: shirt }], "{l}");
            let same = cat.get_product(shirt).await.unwrap();
            assert_eq!(
                (same.version, same.updated_at),
                (joined.version, joined.updated_at),
                "{l}"
            );
            // Absent fields keep their values, so an item that only repeats some of them is
            // unchanged too; attributes count when given.
            let mut with_attrs = item(Some("4006381333931"), None, "T-shirt rouge (M)");
            with_attrs.attributes = attrs(serde_json::json!({"size": "M"}));
            let r = cat.upsert_products(vec![with_attrs.clone()]).await.unwrap();
            assert_eq!(r, [UpsertResult::Updated { id: shirt }], "{l}");
            let r = cat.upsert_products(vec![with_attrs]).await.unwrap();
            assert_eq!(r, [UpsertResult::Unchanged { id: shirt }], "{l}");

            // A SKU two products share cannot key an item.
            for t in ["a", "b"] {
                cat.create_product(item(None, Some("DUP-1"), t)).await.unwrap();
            }
            let r = cat
                .upsert_products(vec![item(None, Some("dup-1"), "which?")])
                .await
                .unwrap();
            assert!(
                matches!(r[0], UpsertResult::Failed { field: "sku", .. }),
                "{l}: {r:?}"
            );
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn existing_keys_answer_which_eans_and_skus_are_taken() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            cat.create_product(NewProduct {
                ean: Some(gtin("4006381333931")),
                sku: Some("Ab-1".into()),
                title: "k".into(),
                ..Default::default()
            })
            .await
            .unwrap();
            let (eans, skus) = cat
                .existing_keys(
                    &["4006381333931".into(), "0887276302195".into()],
                    &["AB-1".into(), "zz".into()],
                )
                .await
                .unwrap();
            assert_eq!(eans.into_iter().collect::<Vec<_>>(), ["4006381333931"], "{l}");
            assert_eq!(skus.into_iter().collect::<Vec<_>>(), ["ab-1"], "{l}");
            let (none, _) = cat.existing_keys(&[], &[]).await.unwrap();
            assert!(none.is_empty());
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn counts_are_exact_up_to_the_bound_then_estimated() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            for i in 0..6 {
                let p = NewProduct {
                    title: format!("c{i}"),
                    sku: Some(if i < 2 { "two".into() } else { format!("s{i}") }),
                    ..Default::default()
                };
                cat.create_product(p).await.unwrap();
            }
            let all = ProductFilter::default();
            let two = ProductFilter {
                sku: Some("two".into()),
                ..Default::default()
            };
            assert_eq!(
                cat.count_products(&all, false).await.unwrap(),
                Total {
                    count: 6,
                    exact: true
                },
                "{l}"
            );
            assert_eq!(
                cat.count_products(&two, false).await.unwrap(),
                Total {
                    count: 2,
                    exact: true
                },
                "{l}"
            );
            assert_eq!(
                cat.count_products(&all, true).await.unwrap(),
                Total {
                    count: 0,
                    exact: true
                },
                "{l}"
            );
            // Beyond the bound: an estimate, never below what was counted (the planner's
            // guess on PostgreSQL, filters and parameters included).
            let t = cat.count_products_up_to(&all, false, 3).await.unwrap();
            assert!(!t.exact && t.count >= 4, "{l}: {t:?}");
            let t = cat.count_products_up_to(&two, false, 1).await.unwrap();
            assert!(!t.exact && t.count >= 2, "{l}: {t:?}");
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn conditional_writes_fail_on_a_version_changed_meanwhile() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let p = cat
                .create_product(NewProduct {
                    title: "v".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(p.version, 1, "{l}");
            let title = |t: &str| ProductPatch {
                title: Some(t.into()),
                ..Default::default()
            };
            let a = cat.update_product(p.id, title("first"), Some(1)).await.unwrap();
            assert_eq!(a.version, 2, "{l}");
            // A second writer that read version 1 too: refused, nothing written.
            match cat.update_product(p.id, title("second"), Some(1)).await {
                Err(StoreError::Stale { current: 2, .. }) => {}
                other => panic!("{l}: {other:?}"),
            }
            assert_eq!(cat.get_product(p.id).await.unwrap().title, "first", "{l}");
            match cat.delete_product(p.id, Some(1)).await {
                Err(StoreError::Stale { current: 2, .. }) => {}
                other => panic!("{l}: {other:?}"),
            }
            cat.delete_product(p.id, Some(2)).await.unwrap();
            // Gone: not found, whatever the version.
            assert!(matches!(
                cat.update_product(p.id, title("x"), Some(3)).await,
                Err(StoreError::NotFound { .. })
            ));
            let back = cat.restore_product(p.id).await.unwrap();
            assert_eq!(back.version, 4, "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn bulk_upsert_by_ean() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let label = env.label;
            let existing = cat
                .create_product(NewProduct {
                    ean: Some(gtin("4006381333931")),
                    title: "old title".into(),
                    description: Some("kept".into()),
                    sku: Some("OLD".into()),
                    status: ProductStatus::Active,
                    attributes: attrs(serde_json::json!({"a": 1})),
                    ..Default::default()
                })
                .await
                .unwrap();
            // A trashed product with an EAN does not catch upserts of that EAN.
            let trashed = cat
                .create_product(NewProduct {
                    ean: Some(gtin("96385074")),
                    title: "trashed".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            cat.delete_product(trashed.id, None).await.unwrap();

            let mut results = cat
                .upsert_products(vec![
                    // updates `existing`
                    NewProduct {
                        ean: Some(gtin("4006381333931")),
                        title: "new title".into(),
                        sku: Some("NEW".into()),
                        weight_grams: Some(5),
                        ..Default::default()
                    },
                    // creates
                    NewProduct {
                        ean: Some(gtin("887276302195")),
                        title: "created".into(),
                        status: ProductStatus::Active,
                        attributes: attrs(serde_json::json!({"b": 2})),
                        ..Default::default()
                    },
                    // refused alone
                    NewProduct {
                        title: "no ean".into(),
                        ..Default::default()
                    },
                    NewProduct {
                        ean: Some(gtin("10012345678902")),
                        title: "  ".into(),
                        ..Default::default()
                    },
                    NewProduct {
                        ean: Some(gtin("10012345678902")),
                        title: "heavy".into(),
                        weight_grams: Some(-1),
                        ..Default::default()
                    },
                    // the same EAN again, spelled as UPC-A: the later item wins
                    NewProduct {
                        ean: Some(gtin("0887276302195")),
                        title: "created, then updated".into(),
                        ..Default::default()
                    },
                    // the trashed product's EAN: a new product
                    NewProduct {
                        ean: Some(gtin("96385074")),
                        title: "reborn".into(),
                        ..Default::default()
                    },
                ])
                .await
                .unwrap();
            assert_eq!(results.len(), 7, "{label}");
            let negative = results.remove(4);
            assert!(
                matches!(
                    negative,
                    UpsertResult::Failed {
                        field: "weight_grams",
                        ..
                    }
                ),
                "{label}"
            );
            assert_eq!(results[0], UpsertResult::Updated { id: existing.id }, "{label}");
            let UpsertResult::Created { id: created } = results[1] else {
                panic!("{label}: {:?}", results[1]);
            };
            assert!(
                matches!(results[2], UpsertResult::Failed { field: "ean", .. }),
                "{label}"
            );
            assert!(
                matches!(results[3], UpsertResult::Failed { field: "title", .. }),
                "{label}"
            );
            assert_eq!(results[4], UpsertResult::Updated { id: created }, "{label}");
            let UpsertResult::Created { id: reborn } = results[5] else {
                panic!("{label}: {:?}", results[5]);
            };
            assert_ne!(reborn, trashed.id);

            let e = cat.get_product(existing.id).await.unwrap();
            assert_eq!(e.title, "new title", "{label}");
            assert_eq!(e.sku.as_deref(), Some("NEW"));
            assert_eq!(e.description.as_deref(), Some("kept"), "absent fields are kept");
            assert_eq!(e.weight_grams, Some(5));
            assert_eq!(
                e.status,
                ProductStatus::Active,
                "status is not changed by upserts"
            );
            assert_eq!(e.attributes, existing.attributes, "no attributes: kept");
            assert_eq!(e.created_at, existing.created_at);
            assert!(e.updated_at >= existing.updated_at);
            let c = cat.get_product(created).await.unwrap();
            assert_eq!(c.title, "created, then updated", "{label}");
            assert_eq!(c.status, ProductStatus::Active);
            assert_eq!(c.attributes, attrs(serde_json::json!({"b": 2})));
            // Serialised for the edge.
            assert_eq!(
                serde_json::to_value(&results[2]).unwrap()["result"],
                serde_json::json!("failed")
            );
            assert_eq!(
                serde_json::to_value(&results[0]).unwrap(),
                serde_json::json!({"result": "updated", "id": existing.id})
            );

            // The largest batch in one call, then one more is refused.
            let batch: Vec<NewProduct> = (0..MAX_UPSERT_BATCH as u64)
                .map(|i| {
                    let payload = format!("{:012}", 200_000_000_000 + i);
                    let check = {
                        let probe = format!("{payload}0");
                        match Gtin::parse(&probe) {
                            Ok(_) => 0,
                            Err(pm_domain::GtinError::BadCheckDigit { expected, .. }) => expected,
                            Err(e) => panic!("{e}"),
                        }
                    };
                    NewProduct {
                        ean: Some(gtin(&format!("{payload}{check}"))),
                        title: format!("bulk {i}"),
                        ..Default::default()
                    }
                })
                .collect();
            let started = std::time::Instant::now();
            let results = cat.upsert_products(batch.clone()).await.unwrap();
            eprintln!(
                "{label}: upsert of {} new products took {:?}",
                batch.len(),
                started.elapsed()
            );
            assert!(
                results.iter().all(|r| matches!(r, UpsertResult::Created { .. })),
                "{label}"
            );
            let started = std::time::Instant::now();
            let again = cat.upsert_products(batch.clone()).await.unwrap();
            eprintln!(
                "{label}: upsert of {} existing products took {:?}",
                batch.len(),
                started.elapsed()
            );
            // The same values again: nothing to write.
            assert!(
                again.iter().all(|r| matches!(r, UpsertResult::Unchanged { .. })),
                "{label}"
            );
            let retitled: Vec<NewProduct> = batch
                .iter()
                .map(|p| NewProduct {
                    title: format!("{} v2", p.title),
                    ..p.clone()
                })
                .collect();
            let started = std::time::Instant::now();
            let changed = cat.upsert_products(retitled).await.unwrap();
            eprintln!(
                "{label}: upsert of {} changed products took {:?}",
                batch.len(),
                started.elapsed()
            );
            assert!(
                changed.iter().all(|r| matches!(r, UpsertResult::Updated { .. })),
                "{label}"
            );
            let mut too_many = batch;
            too_many.push(NewProduct {
                ean: Some(gtin("4006381333931")),
                title: "x".into(),
                ..Default::default()
            });
            let err = cat.upsert_products(too_many).await.unwrap_err();
            assert!(
                matches!(err, StoreError::Invalid { field: "items", .. }),
                "{label}: {err:?}"
            );
            assert!(cat.upsert_products(Vec::new()).await.unwrap().is_empty());
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
