//! Suppliers and supplier products: who sells us what, under which SKU, at what cost.

use chrono::{DateTime, Utc};
use pm_domain::{Currency, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{
    code, non_negative, non_negative_money, not_found, now, opt_text, text, Arg, Changed, DbAmount, Entity,
    RowExt,
};
use super::{Catalog, Page};
use crate::{with_conn, StoreError};

/// A supplier as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Supplier {
    pub id: Uuid,
    /// Short stable code used by import profiles (`ACME`, `ingram-de`); unique.
    pub code: String,
    pub name: String,
    /// Free-form contact: a person, an e-mail, a phone number.
    pub contact: Option<String>,
    /// Currency of the supplier's files when a row does not say.
    pub default_currency: Currency,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A supplier to create.
#[derive(Debug, Clone)]
pub struct NewSupplier {
    pub code: String,
    pub name: String,
    pub contact: Option<String>,
    pub default_currency: Currency,
    pub active: bool,
}

/// A partial update: `None` leaves a field alone; `contact: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct SupplierPatch {
    pub code: Option<String>,
    pub name: Option<String>,
    pub contact: Option<Option<String>>,
    pub default_currency: Option<Currency>,
    pub active: Option<bool>,
}

/// What one supplier sells as one of our products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SupplierProduct {
    pub id: Uuid,
    pub supplier_id: Uuid,
    pub product_id: Uuid,
    /// The supplier's own reference; unique per supplier.
    pub supplier_sku: String,
    pub cost_price: Option<Money>,
    /// Units the supplier says it has.
    pub supplier_stock: Option<i64>,
    pub lead_time_days: Option<i32>,
    /// The import job (imports database) that last listed this row, and when: a full import,
    /// or one that wrote the row (a delta import that finds the row as it last wrote it
    /// writes nothing, this neither).
    pub last_seen_import: Option<Uuid>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A supplier product to create.
#[derive(Debug, Clone)]
pub struct NewSupplierProduct {
    pub supplier_id: Uuid,
    pub product_id: Uuid,
    pub supplier_sku: String,
    pub cost_price: Option<Money>,
    pub supplier_stock: Option<i64>,
    pub lead_time_days: Option<i32>,
    pub last_seen_import: Option<Uuid>,
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears it. Setting
/// `last_seen_import` also sets `last_seen_at` to now.
#[derive(Debug, Clone, Default)]
pub struct SupplierProductPatch {
    pub supplier_sku: Option<String>,
    pub cost_price: Option<Option<Money>>,
    pub supplier_stock: Option<Option<i64>>,
    pub lead_time_days: Option<Option<i32>>,
    pub last_seen_import: Option<Uuid>,
}

const SUPPLIER_COLUMNS: &str = "id, code, name, contact, default_currency, active, created_at, updated_at";

const OFFER_COLUMNS: &str = "id, supplier_id, product_id, supplier_sku, cost_amount, cost_currency, \
     supplier_stock, lead_time_days, last_seen_import, last_seen_at, created_at, updated_at";

impl Entity for Supplier {
    const NAME: &'static str = "supplier";
    const TABLE: &'static str = "suppliers";
    const COLUMNS: &'static str = SUPPLIER_COLUMNS;

    fn from_row(r: &impl RowExt) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.col("id")?,
            code: r.col("code")?,
            name: r.col("name")?,
            contact: r.col("contact")?,
            default_currency: r.col("default_currency")?,
            active: r.col("active")?,
            created_at: r.col("created_at")?,
            updated_at: r.col("updated_at")?,
        })
    }

    fn id(&self) -> Uuid {
        self.id
    }
}

impl Entity for SupplierProduct {
    const NAME: &'static str = "supplier product";
    const TABLE: &'static str = "supplier_products";
    const COLUMNS: &'static str = OFFER_COLUMNS;

    fn from_row(r: &impl RowExt) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.col("id")?,
            supplier_id: r.col("supplier_id")?,
            product_id: r.col("product_id")?,
            supplier_sku: r.col("supplier_sku")?,
            cost_price: r.money("cost_amount", "cost_currency")?,
            supplier_stock: r.col("supplier_stock")?,
            lead_time_days: r.col("lead_time_days")?,
            last_seen_import: r.col("last_seen_import")?,
            last_seen_at: r.col("last_seen_at")?,
            created_at: r.col("created_at")?,
            updated_at: r.col("updated_at")?,
        })
    }

    fn id(&self) -> Uuid {
        self.id
    }
}

fn supplier_code(c: &str) -> Result<String, StoreError> {
    code("code", c, 64)
}

fn supplier_sku(s: &str) -> Result<String, StoreError> {
    text("supplier_sku", s, 128)
}

fn code_taken(c: &str) -> impl FnOnce() -> StoreError + '_ {
    move || StoreError::Conflict {
        entity: "supplier",
        field: "code",
        value: c.to_owned(),
    }
}

fn sku_taken(s: &str) -> impl FnOnce() -> StoreError + '_ {
    move || StoreError::Conflict {
        entity: "supplier product",
        field: "supplier_sku",
        value: s.to_owned(),
    }
}

/// Cost price, supplier stock, lead time.
type OfferValues = (Option<Money>, Option<i64>, Option<i32>);

/// Checks the numbers of a supplier product.
fn offer_values(
    cost: Option<Money>,
    stock: Option<i64>,
    lead: Option<i32>,
) -> Result<OfferValues, StoreError> {
    Ok((
        cost.map(|m| non_negative_money("cost_price", m)).transpose()?,
        stock
            .map(|s| super::common::quantity("supplier_stock", s))
            .transpose()?,
        lead.map(|d| non_negative("lead_time_days", d))
            .transpose()?
            .map(|d| {
                if d > 3650 {
                    Err(super::common::invalid(
                        "lead_time_days",
                        format!("must be 0 to 3650, found {d}"),
                    ))
                } else {
                    Ok(d)
                }
            })
            .transpose()?,
    ))
}

impl Catalog {
    pub async fn create_supplier(&self, s: NewSupplier) -> Result<Supplier, StoreError> {
        let code = supplier_code(&s.code)?;
        let name = text("name", &s.name, 200)?;
        let contact = opt_text("contact", s.contact.as_deref(), 500)?;
        let sql = format!(
            "INSERT INTO suppliers ({SUPPLIER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             RETURNING {SUPPLIER_COLUMNS}"
        );
        let res = async {
            with_conn!(self.db, |conn| {
                let row = sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(&code)
                    .bind(&name)
                    .bind(contact.as_deref())
                    .bind(s.default_currency.as_str())
                    .bind(s.active)
                    .bind(now())
                    .fetch_one(&mut *conn)
                    .await?;
                Supplier::from_row(&row)
            })
        }
        .await;
        self.explain(res, code_taken(&code), &[]).await
    }

    pub async fn get_supplier(&self, id: Uuid) -> Result<Supplier, StoreError> {
        self.get_entity(id).await
    }

    /// The supplier with this code (codes are unique), if any.
    pub async fn supplier_by_code(&self, code: &str) -> Result<Option<Supplier>, StoreError> {
        let sql = format!("SELECT {SUPPLIER_COLUMNS} FROM suppliers WHERE code = $1");
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(code).fetch_optional(&mut *conn).await?;
            row.as_ref().map(Supplier::from_row).transpose()
        })
    }

    /// Applies `patch` in one statement (see products: concurrent patches of different
    /// fields do not overwrite each other).
    pub async fn update_supplier(&self, id: Uuid, patch: SupplierPatch) -> Result<Supplier, StoreError> {
        let code = patch.code.as_deref().map(supplier_code).transpose()?;
        let name = patch.name.as_deref().map(|n| text("name", n, 200)).transpose()?;
        let contact = patch
            .contact
            .as_ref()
            .map(|c| opt_text("contact", c.as_deref(), 500))
            .transpose()?;
        let sql = format!(
            "UPDATE suppliers SET \
             code = COALESCE($2, code), \
             name = COALESCE($3, name), \
             contact = CASE WHEN $4 THEN $5 ELSE contact END, \
             default_currency = COALESCE($6, default_currency), \
             active = COALESCE($7, active), \
             updated_at = $8 \
             WHERE id = $1 RETURNING {SUPPLIER_COLUMNS}"
        );
        let res = async {
            with_conn!(self.db, |conn| {
                let row = sqlx::query(&sql)
                    .bind(id)
                    .bind(code.as_deref())
                    .bind(name.as_deref())
                    .bind(contact.is_some())
                    .bind(contact.clone().flatten())
                    .bind(patch.default_currency.map(|c| c.as_str()))
                    .bind(patch.active)
                    .bind(now())
                    .fetch_optional(&mut *conn)
                    .await?;
                Supplier::from_row(&row.ok_or_else(|| not_found("supplier", id))?)
            })
        }
        .await;
        self.explain(res, code_taken(code.as_deref().unwrap_or_default()), &[])
            .await
    }

    /// Deletes a supplier and, with it, its supplier products.
    pub async fn delete_supplier(&self, id: Uuid) -> Result<(), StoreError> {
        self.delete_row("suppliers", "id", "supplier", id).await
    }

    /// Suppliers in creation order; `active` filters on the flag when given.
    pub async fn list_suppliers(
        &self,
        active: Option<bool>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Supplier>, StoreError> {
        match active {
            Some(a) => {
                self.list_entities("active = $2", &[Arg::Bool(a)], limit, cursor)
                    .await
            }
            None => self.list_entities("TRUE", &[], limit, cursor).await,
        }
    }

    pub async fn create_supplier_product(
        &self,
        p: NewSupplierProduct,
    ) -> Result<SupplierProduct, StoreError> {
        let sql = format!(
            "INSERT INTO supplier_products ({OFFER_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {OFFER_COLUMNS}"
        );
        Ok(self.write_offer(&sql, &p).await?.0)
    }

    /// An import's offer: creates the supplier's product under its SKU, or updates it (its
    /// product, cost and stock when the row has them), and always records the import as the
    /// last that listed it. `changed`: a value differed (`updated_at` moves only then).
    pub async fn upsert_offer(&self, p: NewSupplierProduct) -> Result<Changed<SupplierProduct>, StoreError> {
        let differs = "(supplier_products.product_id IS DISTINCT FROM excluded.product_id \
             OR supplier_products.cost_amount IS DISTINCT FROM COALESCE(excluded.cost_amount, supplier_products.cost_amount) \
             OR supplier_products.cost_currency IS DISTINCT FROM COALESCE(excluded.cost_currency, supplier_products.cost_currency) \
             OR supplier_products.supplier_stock IS DISTINCT FROM COALESCE(excluded.supplier_stock, supplier_products.supplier_stock))";
        let sql = format!(
            "INSERT INTO supplier_products ({OFFER_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
             ON CONFLICT (supplier_id, supplier_sku) DO UPDATE SET \
             updated_at = CASE WHEN {differs} THEN excluded.updated_at ELSE supplier_products.updated_at END, \
             product_id = excluded.product_id, \
             cost_amount = COALESCE(excluded.cost_amount, supplier_products.cost_amount), \
             cost_currency = COALESCE(excluded.cost_currency, supplier_products.cost_currency), \
             supplier_stock = COALESCE(excluded.supplier_stock, supplier_products.supplier_stock), \
             lead_time_days = COALESCE(excluded.lead_time_days, supplier_products.lead_time_days), \
             last_seen_import = COALESCE(excluded.last_seen_import, supplier_products.last_seen_import), \
             last_seen_at = COALESCE(excluded.last_seen_at, supplier_products.last_seen_at), \
             row_hash = NULL \
             RETURNING {OFFER_COLUMNS}"
        );
        let (offer, now) = self.write_offer(&sql, &p).await?;
        // Created now, or updated now: the row's updated_at is this call's.
        let changed = offer.updated_at == now;
        Ok(Changed {
            value: offer,
            changed,
        })
    }

    /// Runs an offer statement with the columns of [`OFFER_COLUMNS`] bound from `p` (`$11` is
    /// now); answers the row and that now.
    async fn write_offer(
        &self,
        sql: &str,
        p: &NewSupplierProduct,
    ) -> Result<(SupplierProduct, DateTime<Utc>), StoreError> {
        let sku = supplier_sku(&p.supplier_sku)?;
        let (cost, stock, lead) = offer_values(p.cost_price, p.supplier_stock, p.lead_time_days)?;
        let now = now();
        let seen_at = p.last_seen_import.map(|_| now);
        let res = async {
            with_conn!(self.db, |conn| {
                let row = sqlx::query(sql)
                    .bind(Uuid::now_v7())
                    .bind(p.supplier_id)
                    .bind(p.product_id)
                    .bind(&sku)
                    .bind(cost.map(|m| DbAmount::from(m.amount())))
                    .bind(cost.map(|m| m.currency().as_str()))
                    .bind(stock)
                    .bind(lead)
                    .bind(p.last_seen_import)
                    .bind(seen_at)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                SupplierProduct::from_row(&row)
            })
        }
        .await;
        let refs = [
            ("supplier_id", "suppliers", p.supplier_id),
            ("product_id", "products", p.product_id),
        ];
        Ok((self.explain(res, sku_taken(&sku), &refs).await?, now))
    }

    pub async fn get_supplier_product(&self, id: Uuid) -> Result<SupplierProduct, StoreError> {
        self.get_entity(id).await
    }

    /// Applies `patch` in one statement.
    pub async fn update_supplier_product(
        &self,
        id: Uuid,
        patch: SupplierProductPatch,
    ) -> Result<SupplierProduct, StoreError> {
        let sku = patch.supplier_sku.as_deref().map(supplier_sku).transpose()?;
        let (cost, stock, lead) = offer_values(
            patch.cost_price.flatten(),
            patch.supplier_stock.flatten(),
            patch.lead_time_days.flatten(),
        )?;
        let sql = format!(
            "UPDATE supplier_products SET \
             supplier_sku = COALESCE($2, supplier_sku), \
             cost_amount = CASE WHEN $3 THEN $4 ELSE cost_amount END, \
             cost_currency = CASE WHEN $3 THEN $5 ELSE cost_currency END, \
             supplier_stock = CASE WHEN $6 THEN $7 ELSE supplier_stock END, \
             lead_time_days = CASE WHEN $8 THEN $9 ELSE lead_time_days END, \
             last_seen_import = COALESCE($10, last_seen_import), \
             last_seen_at = CASE WHEN $11 THEN $12 ELSE last_seen_at END, \
             updated_at = $12, \
             row_hash = NULL \
             WHERE id = $1 RETURNING {OFFER_COLUMNS}"
        );
        let res = async {
            with_conn!(self.db, |conn| {
                let row = sqlx::query(&sql)
                    .bind(id)
                    .bind(sku.as_deref())
                    .bind(patch.cost_price.is_some())
                    .bind(cost.map(|m| DbAmount::from(m.amount())))
                    .bind(cost.map(|m| m.currency().as_str()))
                    .bind(patch.supplier_stock.is_some())
                    .bind(stock)
                    .bind(patch.lead_time_days.is_some())
                    .bind(lead)
                    .bind(patch.last_seen_import)
                    .bind(patch.last_seen_import.is_some())
                    .bind(now())
                    .fetch_optional(&mut *conn)
                    .await?;
                SupplierProduct::from_row(&row.ok_or_else(|| not_found("supplier product", id))?)
            })
        }
        .await;
        self.explain(res, sku_taken(sku.as_deref().unwrap_or_default()), &[])
            .await
    }

    pub async fn delete_supplier_product(&self, id: Uuid) -> Result<(), StoreError> {
        self.delete_row("supplier_products", "id", "supplier product", id)
            .await
    }

    /// One supplier's products in creation order (a catalogue can be large: paginated).
    pub async fn list_supplier_products(
        &self,
        supplier_id: Uuid,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<SupplierProduct>, StoreError> {
        self.list_entities("supplier_id = $2", &[Arg::Uuid(supplier_id)], limit, cursor)
            .await
    }

    /// Every supplier's offer for one product (a handful: not paginated).
    pub async fn supplier_offers(&self, product_id: Uuid) -> Result<Vec<SupplierProduct>, StoreError> {
        let sql = format!("SELECT {OFFER_COLUMNS} FROM supplier_products WHERE product_id = $1 ORDER BY id");
        Ok(with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql).bind(product_id).fetch_all(&mut *conn).await?;
            rows.iter()
                .map(SupplierProduct::from_row)
                .collect::<Result<Vec<_>, _>>()?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::common::testing::{assert_conflict, assert_invalid, open, product};
    use crate::testing::backends;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn new_supplier(code: &str) -> NewSupplier {
        NewSupplier {
            code: code.into(),
            name: format!("Supplier {code}"),
            contact: Some("orders@example.com".into()),
            default_currency: eur(),
            active: true,
        }
    }

    #[tokio::test]
    async fn an_import_upserts_offers_by_supplier_sku_and_tells_what_changed() {
        for env in backends() {
            let (dbs, cat) = crate::catalog::common::testing::open(&env).await;
            let l = env.label;
            let supplier = cat
                .create_supplier(NewSupplier {
                    code: "up".into(),
                    name: "Up".into(),
                    contact: None,
                    default_currency: Currency::parse("EUR").unwrap(),
                    active: true,
                })
                .await
                .unwrap();
            let p = crate::catalog::common::testing::product(&cat, "Offer").await;
            let job = Uuid::now_v7();
            let offer = |cost: Option<&str>, stock: Option<i64>| NewSupplierProduct {
                supplier_id: supplier.id,
                product_id: p,
                supplier_sku: "UP-1".into(),
                cost_price: cost.map(|c| Money::parse(c, "EUR").unwrap()),
                supplier_stock: stock,
                lead_time_days: None,
                last_seen_import: Some(job),
            };
            let a = cat.upsert_offer(offer(Some("4.10"), Some(3))).await.unwrap();
            assert!(a.changed, "{l}");
            let b = cat.upsert_offer(offer(Some("4.10"), Some(3))).await.unwrap();
            assert!(!b.changed, "{l}: the same values change nothing");
            assert_eq!(
                (b.value.id, b.value.updated_at),
                (a.value.id, a.value.updated_at),
                "{l}"
            );
            // Absent values keep what is stored; a new one changes it.
            let c = cat.upsert_offer(offer(None, Some(5))).await.unwrap();
            assert!(c.changed, "{l}");
            assert_eq!(c.value.cost_price, a.value.cost_price, "{l}");
            assert_eq!(c.value.supplier_stock, Some(5), "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn supplier_crud_and_duplicate_code() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let s = cat.create_supplier(new_supplier("ACME")).await.unwrap();
            assert_eq!(cat.get_supplier(s.id).await.unwrap(), s, "{l}");
            assert_conflict(cat.create_supplier(new_supplier("ACME")).await, "code", l);
            assert_invalid(cat.create_supplier(new_supplier("has space")).await, "code", l);
            let other = cat.create_supplier(new_supplier("OTHER")).await.unwrap();
            let patched = cat
                .update_supplier(
                    s.id,
                    SupplierPatch {
                        contact: Some(None),
                        active: Some(false),
                        default_currency: Some(Currency::parse("USD").unwrap()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!((patched.contact, patched.active), (None, false), "{l}");
            assert_eq!(patched.default_currency.as_str(), "USD");
            assert_eq!(patched.code, "ACME");
            let renamed = SupplierPatch {
                code: Some("OTHER".into()),
                ..Default::default()
            };
            assert_conflict(cat.update_supplier(s.id, renamed).await, "code", l);

            let active = cat.list_suppliers(Some(true), 10, None).await.unwrap();
            assert_eq!(
                active.items.iter().map(|s| s.id).collect::<Vec<_>>(),
                [other.id],
                "{l}"
            );
            let first = cat.list_suppliers(None, 1, None).await.unwrap();
            assert_eq!(first.items[0].id, s.id);
            let second = cat
                .list_suppliers(None, 1, first.next_cursor.as_deref())
                .await
                .unwrap();
            assert_eq!((second.items[0].id, second.next_cursor), (other.id, None), "{l}");

            cat.delete_supplier(s.id).await.unwrap();
            assert!(
                matches!(cat.get_supplier(s.id).await, Err(StoreError::NotFound { .. })),
                "{l}"
            );
            assert!(matches!(
                cat.delete_supplier(s.id).await,
                Err(StoreError::NotFound { .. })
            ));
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn supplier_products_crud_and_bad_input() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let acme = cat.create_supplier(new_supplier("ACME")).await.unwrap();
            let other = cat.create_supplier(new_supplier("OTHER")).await.unwrap();
            let pid = product(&cat, "Tab").await;
            let job = Uuid::now_v7();
            let new = |supplier_id, sku: &str| NewSupplierProduct {
                supplier_id,
                product_id: pid,
                supplier_sku: sku.into(),
                cost_price: Some(Money::parse("19.9999", "EUR").unwrap()),
                supplier_stock: Some(12),
                lead_time_days: Some(3),
                last_seen_import: Some(job),
            };
            let o = cat.create_supplier_product(new(acme.id, "A-1")).await.unwrap();
            assert_eq!(o.cost_price.unwrap().amount().to_string(), "19.9999", "{l}");
            assert_eq!(o.last_seen_import, Some(job));
            assert!(o.last_seen_at.is_some());
            assert_eq!(cat.get_supplier_product(o.id).await.unwrap(), o, "{l}");

            // The same SKU: refused for the same supplier, fine for another.
            assert_conflict(
                cat.create_supplier_product(new(acme.id, "A-1")).await,
                "supplier_sku",
                l,
            );
            let o2 = cat.create_supplier_product(new(other.id, "A-1")).await.unwrap();

            let mut bad = new(acme.id, "A-2");
            bad.supplier_stock = Some(-1);
            assert_invalid(cat.create_supplier_product(bad).await, "supplier_stock", l);
            let mut bad = new(acme.id, "A-2");
            bad.cost_price = Some(Money::parse("-1", "EUR").unwrap());
            assert_invalid(cat.create_supplier_product(bad).await, "cost_price", l);
            let mut bad = new(acme.id, "A-2");
            bad.product_id = Uuid::now_v7();
            assert_invalid(cat.create_supplier_product(bad).await, "product_id", l);
            assert_invalid(
                cat.create_supplier_product(new(Uuid::now_v7(), "A-2")).await,
                "supplier_id",
                l,
            );

            let patched = cat
                .update_supplier_product(
                    o.id,
                    SupplierProductPatch {
                        cost_price: Some(None),
                        supplier_stock: Some(Some(0)),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(
                (patched.cost_price, patched.supplier_stock),
                (None, Some(0)),
                "{l}"
            );
            assert_eq!(patched.lead_time_days, Some(3));
            let dup = SupplierProductPatch {
                supplier_sku: Some("A-1".into()),
                ..Default::default()
            };
            assert!(
                cat.update_supplier_product(o.id, dup.clone()).await.is_ok(),
                "{l}: own sku"
            );
            let c = cat.create_supplier_product(new(acme.id, "A-3")).await.unwrap();
            assert_conflict(cat.update_supplier_product(c.id, dup).await, "supplier_sku", l);

            let page = cat.list_supplier_products(acme.id, 10, None).await.unwrap();
            assert_eq!(
                page.items.iter().map(|o| o.id).collect::<Vec<_>>(),
                [o.id, c.id],
                "{l}"
            );
            let offers = cat.supplier_offers(pid).await.unwrap();
            assert_eq!(offers.len(), 3, "{l}");
            cat.delete_supplier_product(o2.id).await.unwrap();
            // Deleting the supplier takes its products with it.
            cat.delete_supplier(acme.id).await.unwrap();
            assert!(cat.supplier_offers(pid).await.unwrap().is_empty(), "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
