//! Messages of the catalog store actor for the entities around products: suppliers and their
//! offers, brands, categories, prices, stocks, attributes, variants, bundles and SEO fields.
//! Each runs one storage call (sometimes preceded by an existence check of the product it
//! hangs on) on the worker pool, like the product messages in [`super::catalog`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pm_storage::catalog::{
    Attribute, AttributeValue, Brand, BrandPatch, Bundle, BundleItem, Catalog, Category, CategoryPatch,
    ChangeSource, Changed, NewBrand, NewCategory, NewPrice, NewSeo, NewSupplier, NewSupplierProduct, Page,
    Price, PriceChange, ProductCategory, Seo, Stock, StockChange, Supplier, SupplierPatch, SupplierProduct,
    SupplierProductPatch, Variant,
};
use pm_storage::StoreError;
use pm_supervisors::{Ctx, Handles, Reply};
use uuid::Uuid;

use super::catalog::CatalogStore;
use crate::changes::{Change, Entity};

/// Declares a message struct and implements `Handles` for it by running `$body` (a future
/// over the `Catalog` handle `$c` and the message `$m`) on the worker pool.
macro_rules! query {
    ($msg:ident { $($field:ident : $ty:ty),* $(,)? } => $ok:ty, |$c:ident, $m:ident| $body:expr) => {
        #[derive(Debug)]
        pub struct $msg { $(pub $field: $ty),* }

        impl Handles<$msg> for CatalogStore {
            type Ok = $ok;
            type Err = StoreError;
            fn is_failure(e: &StoreError) -> bool {
                !e.is_callers()
            }
            fn handle(&mut self, $m: $msg, _ctx: &Ctx<Self>) -> Reply<Result<$ok, StoreError>> {
                let $c = self.catalog().clone();
                Reply::spawn(async move { $body })
            }
        }
    };
}

/// Like `query!` for a write: declares the message, handled only as `Write<$msg>`, and
/// publishes one change of `$entity` keyed by a field of the message (`key(..)`) or of the
/// answer (`result(|r| ..)`), after the commit.
macro_rules! write_msg {
    ($msg:ident { $($field:ident : $ty:ty),* $(,)? } => $ok:ty, $entity:ident $action:literal key($key:expr), |$c:ident, $m:ident| $body:expr) => {
        #[derive(Debug)]
        pub struct $msg { $(pub $field: $ty),* }

        super::write_handler!(CatalogStore, catalog, $msg => $ok, |$c, $m| {
            let key = { let $m = &$m; ($key).to_string() };
            let ok: $ok = { $body }?;
            Ok((ok, vec![Change::one(Entity::$entity, $action, key)]))
        });
    };
    ($msg:ident { $($field:ident : $ty:ty),* $(,)? } => $ok:ty, $entity:ident $action:literal result(|$r:ident| $rkey:expr), |$c:ident, $m:ident| $body:expr) => {
        #[derive(Debug)]
        pub struct $msg { $(pub $field: $ty),* }

        super::write_handler!(CatalogStore, catalog, $msg => $ok, |$c, $m| {
            let ok: $ok = { $body }?;
            let key = { let $r = &ok; ($rkey).to_string() };
            Ok((ok, vec![Change::one(Entity::$entity, $action, key)]))
        });
    };
}

/// `NotFound` unless the (live) product exists: lists of a product's sub-resources answer
/// 404 for an unknown product rather than an empty list, and writes to them do not reach a
/// soft-deleted product (whose rows still satisfy the foreign keys).
async fn product_exists(c: &Catalog, id: Uuid) -> Result<(), StoreError> {
    c.get_product(id).await.map(drop)
}

/// [`product_exists`] for a product named in a body: an unknown one is invalid input naming
/// `field`, not a missing resource.
async fn referenced_product(c: &Catalog, field: &'static str, id: Uuid) -> Result<(), StoreError> {
    match c.get_product(id).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound { .. }) => Err(StoreError::Invalid {
            field,
            reason: format!("no product with id {id}"),
        }),
        Err(e) => Err(e),
    }
}

// ---- suppliers and their offers ---------------------------------------------------------

write_msg!(CreateSupplier { supplier: NewSupplier } => Supplier, Supplier "create" result(|r| r.id), |c, m| c.create_supplier(m.supplier).await);
query!(GetSupplier { id: Uuid } => Supplier, |c, m| c.get_supplier(m.id).await);
write_msg!(UpdateSupplier { id: Uuid, patch: SupplierPatch } => Supplier, Supplier "update" key(m.id), |c, m| c.update_supplier(m.id, m.patch).await);
write_msg!(DeleteSupplier { id: Uuid } => (), Supplier "delete" key(m.id), |c, m| c.delete_supplier(m.id).await);
query!(ListSuppliers { active: Option<bool>, limit: u32, cursor: Option<String> } => Page<Supplier>,
    |c, m| c.list_suppliers(m.active, m.limit, m.cursor.as_deref()).await);

write_msg!(CreateSupplierProduct { offer: NewSupplierProduct } => SupplierProduct, SupplierProduct "create" result(|r| r.id), |c, m| {
    c.get_supplier(m.offer.supplier_id).await?;
    referenced_product(&c, "product_id", m.offer.product_id).await?;
    c.create_supplier_product(m.offer).await
});
query!(GetSupplierProduct { id: Uuid } => SupplierProduct, |c, m| c.get_supplier_product(m.id).await);
write_msg!(UpsertOffer { offer: NewSupplierProduct } => Changed<SupplierProduct>, SupplierProduct "upsert" result(|r| r.value.id),
    |c, m| c.upsert_offer(m.offer).await);
write_msg!(UpdateSupplierProduct { id: Uuid, patch: SupplierProductPatch } => SupplierProduct, SupplierProduct "update" key(m.id),
    |c, m| c.update_supplier_product(m.id, m.patch).await);
write_msg!(DeleteSupplierProduct { id: Uuid } => (), SupplierProduct "delete" key(m.id), |c, m| c.delete_supplier_product(m.id).await);
query!(ListSupplierProducts { supplier_id: Uuid, limit: u32, cursor: Option<String> } => Page<SupplierProduct>, |c, m| {
    c.get_supplier(m.supplier_id).await?;
    c.list_supplier_products(m.supplier_id, m.limit, m.cursor.as_deref()).await
});
query!(SupplierOffers { product_id: Uuid } => Vec<SupplierProduct>, |c, m| {
    product_exists(&c, m.product_id).await?;
    c.supplier_offers(m.product_id).await
});

// ---- brands -----------------------------------------------------------------------------

write_msg!(CreateBrand { brand: NewBrand } => Brand, Brand "create" result(|r| r.id), |c, m| c.create_brand(m.brand).await);
query!(GetBrand { id: Uuid } => Brand, |c, m| c.get_brand(m.id).await);
write_msg!(UpdateBrand { id: Uuid, patch: BrandPatch } => Brand, Brand "update" key(m.id), |c, m| c.update_brand(m.id, m.patch).await);
write_msg!(DeleteBrand { id: Uuid } => (), Brand "delete" key(m.id), |c, m| c.delete_brand(m.id).await);
query!(ListBrands { limit: u32, cursor: Option<String> } => Page<Brand>,
    |c, m| c.list_brands(m.limit, m.cursor.as_deref()).await);

// ---- categories -------------------------------------------------------------------------

write_msg!(CreateCategory { category: NewCategory } => Category, Category "create" result(|r| r.id), |c, m| c.create_category(m.category).await);
// An import's category path (`["Clothing", "Tshirts"]`): found by slugs, made where missing.
write_msg!(EnsureCategoryPath { names: Vec<String> } => Category, Category "ensure" result(|r| r.id),
    |c, m| c.ensure_category_path(&m.names).await);
query!(GetCategory { id: Uuid } => Category, |c, m| c.get_category(m.id).await);
write_msg!(UpdateCategory { id: Uuid, patch: CategoryPatch } => Category, Category "update" key(m.id),
    |c, m| c.update_category(m.id, m.patch).await);
write_msg!(MoveCategory { id: Uuid, parent_id: Option<Uuid> } => Category, Category "move" key(m.id),
    |c, m| c.move_category(m.id, m.parent_id).await);
write_msg!(DeleteCategory { id: Uuid } => (), Category "delete" key(m.id), |c, m| c.delete_category(m.id).await);
query!(ListCategories { parent: Option<Uuid>, limit: u32, cursor: Option<String> } => Page<Category>, |c, m| {
    if let Some(p) = m.parent {
        c.get_category(p).await?;
    }
    c.list_categories(m.parent, m.limit, m.cursor.as_deref()).await
});
query!(ListSubtree { id: Uuid, limit: u32, cursor: Option<String> } => Page<Category>,
    |c, m| c.list_subtree(m.id, m.limit, m.cursor.as_deref()).await);

query!(ProductCategories { product_id: Uuid } => Vec<ProductCategory>, |c, m| {
    product_exists(&c, m.product_id).await?;
    c.product_categories(m.product_id).await
});
write_msg!(AssignCategory { product_id: Uuid, category_id: Uuid, taxonomy: String } => (), Product "assign_category" key(m.product_id), |c, m| {
    product_exists(&c, m.product_id).await?;
    c.assign_category(m.product_id, m.category_id, &m.taxonomy).await
});
write_msg!(UnassignCategory { product_id: Uuid, category_id: Uuid, taxonomy: String } => (), Product "unassign_category" key(m.product_id), |c, m| {
    product_exists(&c, m.product_id).await?;
    c.unassign_category(m.product_id, m.category_id, &m.taxonomy).await
});

// ---- prices and stocks ------------------------------------------------------------------

write_msg!(SetPrice { product_id: Uuid, price: NewPrice, source: ChangeSource } => Changed<Price>, Price "set" result(|r| r.value.id), |c, m| {
    product_exists(&c, m.product_id).await?;
    c.set_price(m.product_id, m.price, m.source).await
});
query!(ListPrices { product_id: Uuid } => Vec<Price>, |c, m| {
    product_exists(&c, m.product_id).await?;
    c.prices(m.product_id).await
});
write_msg!(DeletePrice { id: Uuid, source: ChangeSource } => (), Price "delete" key(m.id), |c, m| c.delete_price(m.id, m.source).await);
query!(PriceHistory { product_id: Uuid, from: DateTime<Utc>, to: DateTime<Utc>, limit: u32, cursor: Option<String>, with_costs: bool } => Page<PriceChange>, |c, m| {
    product_exists(&c, m.product_id).await?;
    c.price_history(m.product_id, m.from, m.to, m.limit, m.cursor.as_deref(), m.with_costs).await
});

write_msg!(SetStock { product_id: Uuid, warehouse: String, quantity: i64, source: ChangeSource } => Changed<Stock>, Stock "set" result(|r| r.value.id), |c, m| {
    product_exists(&c, m.product_id).await?;
    c.set_stock(m.product_id, &m.warehouse, m.quantity, m.source).await
});
query!(ListStocks { product_id: Uuid } => Vec<Stock>, |c, m| {
    product_exists(&c, m.product_id).await?;
    c.stocks(m.product_id).await
});
write_msg!(DeleteStock { product_id: Uuid, warehouse: String, source: ChangeSource } => (), Stock "delete" key(format!("{}/{}", m.product_id, m.warehouse)), |c, m| {
    product_exists(&c, m.product_id).await?;
    c.delete_stock(m.product_id, &m.warehouse, m.source).await
});
query!(StockHistory { product_id: Uuid, from: DateTime<Utc>, to: DateTime<Utc>, limit: u32, cursor: Option<String> } => Page<StockChange>, |c, m| {
    product_exists(&c, m.product_id).await?;
    c.stock_history(m.product_id, m.from, m.to, m.limit, m.cursor.as_deref()).await
});

// ---- attributes -------------------------------------------------------------------------

write_msg!(SetAttribute { product_id: Uuid, key: String, value: AttributeValue } => Attribute, Attribute "set" key(format!("{}/{}", m.product_id, m.key)), |c, m| {
    product_exists(&c, m.product_id).await?;
    c.set_attribute(m.product_id, &m.key, m.value).await
});
query!(ListAttributes { product_id: Uuid } => Vec<Attribute>, |c, m| {
    product_exists(&c, m.product_id).await?;
    c.attributes(m.product_id).await
});
write_msg!(DeleteAttribute { product_id: Uuid, key: String } => (), Attribute "delete" key(format!("{}/{}", m.product_id, m.key)), |c, m| {
    product_exists(&c, m.product_id).await?;
    c.delete_attribute(m.product_id, &m.key).await
});

// ---- variants ---------------------------------------------------------------------------

write_msg!(SetVariant { product_id: Uuid, parent_id: Uuid, axes: BTreeMap<String, String> } => Variant, Variant "set" key(m.product_id), |c, m| {
    product_exists(&c, m.product_id).await?;
    referenced_product(&c, "parent_id", m.parent_id).await?;
    c.set_variant(m.parent_id, m.product_id, m.axes).await
});
query!(GetVariant { product_id: Uuid } => Variant, |c, m| c.get_variant(m.product_id).await);
query!(ListVariants { parent_id: Uuid } => Vec<Variant>, |c, m| {
    product_exists(&c, m.parent_id).await?;
    c.variants(m.parent_id).await
});
write_msg!(RemoveVariant { product_id: Uuid } => (), Variant "delete" key(m.product_id), |c, m| c.remove_variant(m.product_id).await);

// ---- bundles ----------------------------------------------------------------------------

write_msg!(CreateBundle { product_id: Uuid, items: Vec<BundleItem> } => Bundle, Bundle "create" key(m.product_id), |c, m| {
    product_exists(&c, m.product_id).await?;
    for item in &m.items {
        referenced_product(&c, "items", item.product_id).await?;
    }
    c.create_bundle(m.product_id, &m.items).await
});
query!(GetBundle { product_id: Uuid } => Bundle, |c, m| c.get_bundle(m.product_id).await);
write_msg!(SetBundleItem { bundle_id: Uuid, item: BundleItem } => Bundle, Bundle "update" key(m.bundle_id), |c, m| {
    c.get_bundle(m.bundle_id).await?;
    referenced_product(&c, "product_id", m.item.product_id).await?;
    c.set_bundle_item(m.bundle_id, m.item).await
});
write_msg!(RemoveBundleItem { bundle_id: Uuid, product_id: Uuid } => Bundle, Bundle "update" key(m.bundle_id), |c, m| {
    c.get_bundle(m.bundle_id).await?;
    c.remove_bundle_item(m.bundle_id, m.product_id).await
});
write_msg!(DeleteBundle { product_id: Uuid } => (), Bundle "delete" key(m.product_id), |c, m| c.delete_bundle(m.product_id).await);

// ---- SEO --------------------------------------------------------------------------------

write_msg!(SetSeo { product_id: Uuid, seo: NewSeo } => Seo, Seo "set" key(m.product_id), |c, m| {
    product_exists(&c, m.product_id).await?;
    c.set_seo(m.product_id, m.seo).await
});
query!(GetSeo { product_id: Uuid } => Seo, |c, m| c.get_seo(m.product_id).await);
query!(SeoBySlug { slug: String } => Seo, |c, m| c.seo_by_slug(&m.slug).await);
write_msg!(DeleteSeo { product_id: Uuid } => (), Seo "delete" key(m.product_id), |c, m| c.delete_seo(m.product_id).await);
