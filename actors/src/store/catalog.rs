//! The catalog store actor and its messages.

use std::time::Duration;

use pm_storage::catalog::{
    Catalog, NewProduct, Page, Product, ProductFilter, ProductPatch, ProductSort, SearchHit, Total,
    UpsertResult,
};
use pm_storage::StoreError;
use pm_supervisors::{Behaviour, Ctx, Handles, Reply};
use uuid::Uuid;

use super::{write_handler, Ping};
use crate::changes::{Change, ChangeBus, Entity};

pub struct CatalogStore {
    pub(crate) catalog: Catalog,
    /// Every write's changes go here after its commit.
    pub(crate) bus: ChangeBus,
}

impl CatalogStore {
    pub fn new(catalog: Catalog, bus: ChangeBus) -> Self {
        Self { catalog, bus }
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
write_handler!(CatalogStore, catalog, CreateProduct => Product, |c, m| {
    let p = c.create_product(m.0).await?;
    let change = Change::one(Entity::Product, "create", p.id);
    Ok((p, vec![change]))
});

#[derive(Debug)]
pub struct GetProduct(pub Uuid);
query!(GetProduct => Product, |c, m| c.get_product(m.0));

/// A patch; with a version (If-Match), only if the product is still at it.
#[derive(Debug)]
pub struct UpdateProduct(pub Uuid, pub ProductPatch, pub Option<i64>);
write_handler!(CatalogStore, catalog, UpdateProduct => Product, |c, m| {
    let p = c.update_product(m.0, m.1, m.2).await?;
    Ok((p, vec![Change::one(Entity::Product, "update", m.0)]))
});

/// To the trash; with a version (If-Match), only if the product is still at it.
#[derive(Debug)]
pub struct DeleteProduct(pub Uuid, pub Option<i64>);
write_handler!(CatalogStore, catalog, DeleteProduct => (), |c, m| {
    c.delete_product(m.0, m.1).await?;
    Ok(((), vec![Change::one(Entity::Product, "delete", m.0)]))
});

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

/// How many products a list would hold (live, or with `trash` the trash).
#[derive(Debug)]
pub struct CountProducts {
    pub filter: ProductFilter,
    pub trash: bool,
}
query!(CountProducts => Total, |c, m| async move { c.count_products(&m.filter, m.trash).await });

/// Which of these EANs and SKUs live products already have (a dry run's forecast).
#[derive(Debug)]
pub struct ExistingKeys {
    pub eans: Vec<String>,
    pub skus: Vec<String>,
}
query!(ExistingKeys => (std::collections::HashSet<String>, std::collections::HashSet<String>), |c, m| async move {
    c.existing_keys(&m.eans, &m.skus).await
});

/// A dry run's forecast of the rows an import would find unchanged (one flag per row).
#[derive(Debug)]
pub struct UnchangedImportRows {
    pub supplier_id: uuid::Uuid,
    pub warehouse: String,
    pub rows: Vec<pm_storage::catalog::ImportRow>,
}
query!(UnchangedImportRows => Vec<bool>, |c, m| async move {
    c.unchanged_import_rows(m.supplier_id, &m.warehouse, &m.rows).await
});

/// The live products with these SKUs (case-insensitive), by lower-cased SKU.
#[derive(Debug)]
pub struct IdsBySku {
    pub skus: Vec<String>,
}
query!(IdsBySku => std::collections::HashMap<String, Uuid>, |c, m| async move { c.ids_by_sku(&m.skus).await });

#[derive(Debug)]
pub struct RestoreProduct(pub Uuid);
write_handler!(CatalogStore, catalog, RestoreProduct => Product, |c, m| {
    let p = c.restore_product(m.0).await?;
    Ok((p, vec![Change::one(Entity::Product, "restore", m.0)]))
});

/// Deletes for good the products in the trash for longer than the given age.
#[derive(Debug)]
pub struct PurgeTrash(pub chrono::Duration);
write_handler!(CatalogStore, catalog, PurgeTrash => u64, |c, m| {
    let n = c.purge_trash(m.0).await?;
    let changes = if n > 0 {
        vec![Change::many(Entity::Product, "purge", Vec::new(), format!("{n} purged from the trash"))]
    } else {
        Vec::new()
    };
    Ok((n, changes))
});

/// Creates or updates up to 1,000 products by EAN in one transaction.
#[derive(Debug)]
pub struct UpsertProducts(pub Vec<NewProduct>);
write_handler!(CatalogStore, catalog, UpsertProducts => Vec<UpsertResult>, |c, m| {
    let results = c.upsert_products(m.0).await?;
    // One change for the whole batch: the cache drops every id at once and the activity log
    // gets one entry.
    let (mut created, mut updated, mut ids) = (0, 0, Vec::with_capacity(results.len()));
    for r in &results {
        match r {
            UpsertResult::Created { id } => {
                created += 1;
                ids.push(id.to_string());
            }
            UpsertResult::Updated { id } => {
                updated += 1;
                ids.push(id.to_string());
            }
            UpsertResult::Unchanged { .. } | UpsertResult::Failed { .. } => {}
        }
    }
    let changes = if ids.is_empty() {
        Vec::new()
    } else {
        let summary = format!("{created} created, {updated} updated");
        vec![Change::many(Entity::Product, "bulk_upsert", ids, summary)]
    };
    Ok((results, changes))
});

#[derive(Debug)]
pub struct SearchProducts {
    pub q: String,
    pub filter: ProductFilter,
    pub limit: u32,
}
query!(SearchProducts => Vec<SearchHit>, |c, m| async move {
    c.search_products(&m.q, &m.filter, m.limit).await
});

/// Product ids as the change events carry them.
fn id_strings(ids: impl IntoIterator<Item = Uuid>) -> Vec<String> {
    ids.into_iter().map(|id| id.to_string()).collect()
}

/// An import's batch in one transaction (products, prices, stock, offers; the bulk lane). One
/// change per kind for the whole batch, so caches drop per batch, not per row.
#[derive(Debug)]
pub struct ImportBatch(pub pm_storage::catalog::ImportBatch);
write_handler!(CatalogStore, catalog, ImportBatch => Vec<pm_storage::catalog::ImportOutcome>, |c, m| {
    let job = m.0.job_id;
    let out = c.import_batch(m.0).await?;
    let (mut created, mut updated) = (0, 0);
    let (mut products, mut values) = (Vec::new(), Vec::new());
    for o in &out {
        match o.product {
            UpsertResult::Created { id } => {
                created += 1;
                products.push(id);
            }
            UpsertResult::Updated { id } => {
                updated += 1;
                products.push(id);
            }
            UpsertResult::Unchanged { id } if o.prices_changed > 0 || o.stock_changed || o.offer_changed => {
                values.push(id);
            }
            _ => {}
        }
    }
    let mut changes = Vec::new();
    if !products.is_empty() {
        let summary = format!("import {job}: {created} created, {updated} updated");
        changes.push(Change::many(Entity::Product, "import", id_strings(products), summary));
    }
    if !values.is_empty() {
        let summary = format!("import {job}: prices, stock or offers of {} products", values.len());
        changes.push(Change::many(Entity::Price, "import", id_strings(values), summary));
    }
    Ok((out, changes))
});

/// Undoes an import job's changes (see `Catalog::rollback_import`).
#[derive(Debug)]
pub struct RollbackImport(pub Uuid);
write_handler!(CatalogStore, catalog, RollbackImport => pm_storage::catalog::RollbackReport, |c, m| {
    let report = c.rollback_import(m.0).await?;
    let changes = if report.product_ids.is_empty() && report.offers_restored == 0 {
        Vec::new()
    } else {
        let summary = format!("rollback of import {}", m.0);
        vec![Change::many(Entity::Product, "import_rollback", id_strings(report.product_ids.clone()), summary)]
    };
    Ok((report, changes))
});

/// A full import's end: the supplier's offers it did not list go to stock 0.
#[derive(Debug)]
pub struct MarkMissing {
    pub job_id: Uuid,
    pub supplier_id: Uuid,
    pub warehouse: String,
}
write_handler!(CatalogStore, catalog, MarkMissing => pm_storage::catalog::MissingReport, |c, m| {
    let report = c.mark_missing(m.job_id, m.supplier_id, &m.warehouse).await?;
    let changes = if report.offers == 0 && report.stocks == 0 {
        Vec::new()
    } else {
        let summary = format!("import {}: {} offers missing from the file set to stock 0", m.job_id, report.offers);
        vec![Change::many(Entity::Stock, "import_missing", id_strings(report.product_ids.clone()), summary)]
    };
    Ok((report, changes))
});

/// Refreshes the planner's statistics of the tables imports write (PostgreSQL).
#[derive(Debug)]
pub struct AnalyzeImportTables;
query!(AnalyzeImportTables => (), |c, _m| async move { c.analyze_import_tables().await });

/// The EANs of a selection of products (a Code2ASIN job's input).
#[derive(Debug)]
pub struct EansOf {
    pub selection: pm_storage::catalog::AsinSelection,
    pub limit: u32,
}
query!(EansOf => Vec<String>, |c, m| async move { c.eans_of(&m.selection, m.limit).await });

/// Sets the ASIN of the products of these EANs (Code2ASIN's matches); one change for all.
#[derive(Debug)]
pub struct SetAsins(pub Vec<(pm_domain::Gtin, pm_domain::Asin)>);
write_handler!(CatalogStore, catalog, SetAsins => usize, |c, m| {
    let ids = c.set_asins(&m.0).await?;
    let n = ids.len();
    let changes = if ids.is_empty() {
        Vec::new()
    } else {
        let summary = format!("code2asin: asin of {n} products");
        vec![Change::many(Entity::Product, "update", id_strings(ids), summary)]
    };
    Ok((n, changes))
});
