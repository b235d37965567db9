//! The catalog store actor and its messages.

use std::time::Duration;

use pm_storage::catalog::{
    Catalog, NewProduct, Page, Product, ProductFilter, ProductPatch, ProductSort, SearchHit, UpsertResult,
};
use pm_storage::StoreError;
use pm_supervisors::{Behaviour, Ctx, Handles, Reply};
use uuid::Uuid;

use super::Ping;

pub struct CatalogStore {
    catalog: Catalog,
}

impl CatalogStore {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

impl Behaviour for CatalogStore {
    fn observe(&self) -> serde_json::Value {
        super::observe(self.catalog.db())
    }
}

impl Handles<Ping> for CatalogStore {
    type Ok = Duration;
    type Err = StoreError;
    fn handle(&mut self, _: Ping, _ctx: &Ctx<Self>) -> Reply<Result<Duration, StoreError>> {
        super::ping(self.catalog.db())
    }
}

/// Implements `Handles<$msg>` by running one `Catalog` query on the worker pool.
macro_rules! query {
    ($msg:ty => $ok:ty, |$cat:ident, $m:ident| $body:expr) => {
        impl Handles<$msg> for CatalogStore {
            type Ok = $ok;
            type Err = StoreError;
            fn is_failure(e: &StoreError) -> bool {
                !e.is_callers()
            }
            fn handle(&mut self, $m: $msg, _ctx: &Ctx<Self>) -> Reply<Result<$ok, StoreError>> {
                let $cat = self.catalog.clone();
                Reply::spawn(async move { $body.await })
            }
        }
    };
}

#[derive(Debug)]
pub struct CreateProduct(pub NewProduct);
query!(CreateProduct => Product, |c, m| c.create_product(m.0));

#[derive(Debug)]
pub struct GetProduct(pub Uuid);
query!(GetProduct => Product, |c, m| c.get_product(m.0));

#[derive(Debug)]
pub struct UpdateProduct(pub Uuid, pub ProductPatch);
query!(UpdateProduct => Product, |c, m| c.update_product(m.0, m.1));

#[derive(Debug)]
pub struct DeleteProduct(pub Uuid);
query!(DeleteProduct => (), |c, m| c.delete_product(m.0));

#[derive(Debug)]
pub struct ListProducts {
    pub filter: ProductFilter,
    pub sort: ProductSort,
    pub limit: u32,
    pub cursor: Option<String>,
}
query!(ListProducts => Page<Product>, |c, m| async move {
    c.list_products_sorted(&m.filter, m.sort, m.limit, m.cursor.as_deref()).await
});

/// Products in the trash (soft-deleted, not yet purged).
#[derive(Debug)]
pub struct ListTrash {
    pub filter: ProductFilter,
    pub sort: ProductSort,
    pub limit: u32,
    pub cursor: Option<String>,
}
query!(ListTrash => Page<Product>, |c, m| async move {
    c.list_trash(&m.filter, m.sort, m.limit, m.cursor.as_deref()).await
});

#[derive(Debug)]
pub struct RestoreProduct(pub Uuid);
query!(RestoreProduct => Product, |c, m| c.restore_product(m.0));

/// Deletes for good the products in the trash for longer than the given age.
#[derive(Debug)]
pub struct PurgeTrash(pub chrono::Duration);
query!(PurgeTrash => u64, |c, m| c.purge_trash(m.0));

/// Creates or updates up to 1,000 products by EAN in one transaction.
#[derive(Debug)]
pub struct UpsertProducts(pub Vec<NewProduct>);
query!(UpsertProducts => Vec<UpsertResult>, |c, m| c.upsert_products_by_ean(m.0));

#[derive(Debug)]
pub struct SearchProducts {
    pub q: String,
    pub filter: ProductFilter,
    pub limit: u32,
}
query!(SearchProducts => Vec<SearchHit>, |c, m| async move {
    c.search_products(&m.q, &m.filter, m.limit).await
});
