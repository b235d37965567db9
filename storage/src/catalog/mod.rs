//! Queries of the catalog database, one module per entity. [`Catalog`] is the handle the
//! catalog store actor owns; each module adds its methods to it.

mod asin;
mod attributes;
mod brands;
mod bundles;
mod categories;
mod common;
mod import_batch;
mod prices;
mod products;
mod search;
mod seo;
mod stocks;
mod suppliers;
mod variants;

pub use asin::AsinSelection;
pub use attributes::{Attribute, AttributeValue};
pub use brands::{Brand, BrandPatch, NewBrand};
pub use bundles::{Bundle, BundleItem};
pub use categories::{Category, CategoryPatch, NewCategory, ProductCategory};
pub use common::{ChangeSource, Changed};
pub use import_batch::{ImportBatch, ImportOffer, ImportOutcome, ImportRow, MissingReport, RollbackReport};
pub use prices::{NewPrice, Price, PriceChange, PriceType};
pub use products::{
    Attributes, PriceRange, ProductSort, SortKey, Total, UnknownSort, UpsertResult, EXACT_COUNT_LIMIT,
    EXACT_COUNT_LIMIT_SQLITE, MAX_UPSERT_BATCH,
};
pub use products::{NewProduct, Product, ProductFilter, ProductPatch};
pub use search::{MatchKind, SearchHit, TEXT_CANDIDATES};
pub use seo::{NewSeo, Seo};
pub use stocks::{Stock, StockChange};
pub use suppliers::{
    NewSupplier, NewSupplierProduct, Supplier, SupplierPatch, SupplierProduct, SupplierProductPatch,
};
pub use variants::Variant;

use serde::Serialize;

use crate::Db;

/// Now, to the microsecond (what both backends keep), for other modules' timestamps.
pub fn now_micros() -> chrono::DateTime<chrono::Utc> {
    common::now()
}

/// Catalog queries on the catalog database.
#[derive(Debug, Clone)]
pub struct Catalog {
    db: Db,
}

impl Catalog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// One page of a keyset-paginated list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
