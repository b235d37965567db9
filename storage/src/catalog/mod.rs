//! Queries of the catalog database, one module per entity. [`Catalog`] is the handle the
//! catalog store actor owns; each module adds its methods to it.

mod products;

pub use products::{NewProduct, Product, ProductFilter, ProductPatch};

use serde::Serialize;

use crate::Db;

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
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
