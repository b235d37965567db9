//! Prices of a product by type and currency, with an optional validity window, and their
//! history: a history row is written only when an amount actually changes.

use chrono::{DateTime, SubsecRound, Utc};
use pm_domain::{Amount, Currency, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{
    invalid, non_negative_money, not_found, now, Arg, BeginLocked, ChangeSource, Changed, DbAmount, Entity,
    RowExt,
};
use super::{Catalog, Page};
use crate::{with_conn, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PriceType {
    Retail,
    Cost,
    Msrp,
    Sale,
}

impl PriceType {
    pub const ALL: [PriceType; 4] = [Self::Retail, Self::Cost, Self::Msrp, Self::Sale];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retail => "retail",
            Self::Cost => "cost",
            Self::Msrp => "msrp",
            Self::Sale => "sale",
        }
    }

    /// Parses `retail`, `cost`, `msrp` or `sale`; anything else is refused naming `price_type`.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            invalid(
                "price_type",
                format!("{s:?} is not one of retail, cost, msrp, sale"),
            )
        })
    }
}

/// A price as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Price {
    pub id: Uuid,
    pub product_id: Uuid,
    pub price_type: PriceType,
    #[serde(flatten)]
    pub price: Money,
    /// `None`: since always.
    pub valid_from: Option<DateTime<Utc>>,
    /// `None`: until further notice.
    pub valid_to: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A price to set. A price is identified by product, type, currency and `valid_from`:
/// setting it again replaces its amount (and `valid_to`).
#[derive(Debug, Clone)]
pub struct NewPrice {
    pub price_type: PriceType,
    pub price: Money,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
}

impl NewPrice {
    /// From the strings an import row or a form carries; each error names its field
    /// (`price_type`, `amount`, `currency`).
    pub fn parse(price_type: &str, amount: &str, currency: &str) -> Result<Self, StoreError> {
        let price_type = PriceType::parse(price_type)?;
        let amount = Amount::parse(amount).map_err(|e| invalid("amount", e.to_string()))?;
        let currency = Currency::parse(currency).map_err(|e| invalid("currency", e.to_string()))?;
        Ok(Self {
            price_type,
            price: Money::new(amount, currency),
            valid_from: None,
            valid_to: None,
        })
    }
}

/// One change of a price: `old` is `None` when it was created, `new` when it was deleted.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PriceChange {
    pub id: Uuid,
    pub product_id: Uuid,
    pub price_type: PriceType,
    pub currency: Currency,
    pub valid_from: Option<DateTime<Utc>>,
    pub old: Option<Money>,
    pub new: Option<Money>,
    pub source: ChangeSource,
    pub changed_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, product_id, price_type, currency, amount, valid_from, valid_to, updated_at";

const HISTORY_COLUMNS: &str = "id, product_id, price_type, currency, valid_from, old_amount, new_amount, \
     source, import_job_id, changed_at";

fn price_type_col(r: &impl RowExt) -> Result<PriceType, StoreError> {
    let t: String = r.col("price_type")?;
    PriceType::parse(&t).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Entity for Price {
    const NAME: &'static str = "price";
    const TABLE: &'static str = "product_prices";
    const COLUMNS: &'static str = COLUMNS;

    fn from_row(r: &impl RowExt) -> Result<Self, StoreError> {
        let currency: Currency = r.col("currency")?;
        Ok(Self {
            id: r.col("id")?,
            product_id: r.col("product_id")?,
            price_type: price_type_col(r)?,
            price: Money::new(r.col("amount")?, currency),
            valid_from: r.col("valid_from")?,
            valid_to: r.col("valid_to")?,
            updated_at: r.col("updated_at")?,
        })
    }

    fn id(&self) -> Uuid {
        self.id
    }
}

impl Entity for PriceChange {
    const NAME: &'static str = "price change";
    const TABLE: &'static str = "price_history";
    const COLUMNS: &'static str = HISTORY_COLUMNS;

    fn from_row(r: &impl RowExt) -> Result<Self, StoreError> {
        let kind: String = r.col("source")?;
        Ok(Self {
            id: r.col("id")?,
            product_id: r.col("product_id")?,
            price_type: price_type_col(r)?,
            currency: r.col("currency")?,
            valid_from: r.col("valid_from")?,
            old: r.money("old_amount", "currency")?,
            new: r.money("new_amount", "currency")?,
            source: ChangeSource::from_columns(&kind, r.col("import_job_id")?)?,
            changed_at: r.col("changed_at")?,
        })
    }

    fn id(&self) -> Uuid {
        self.id
    }
}

/// The lock that serialises the price writes of one product.
fn lock_key(product_id: Uuid) -> String {
    format!("catalog.prices.{product_id}")
}

/// Finds the price with the same key; NULL `valid_from` matches NULL.
const FIND: &str = "SELECT id, product_id, price_type, currency, amount, valid_from, valid_to, updated_at \
     FROM product_prices WHERE product_id = $1 AND price_type = $2 AND currency = $3 \
     AND (valid_from = $4 OR (valid_from IS NULL AND $4 IS NULL))";

const RECORD: &str =
    "INSERT INTO price_history (id, product_id, price_type, currency, valid_from, old_amount, \
     new_amount, source, import_job_id, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

impl Catalog {
    /// Sets a price: creates it, or replaces the amount of the price with the same product,
    /// type, currency and start. A history row (with `source`) is written only when the amount
    /// changes; `changed` says whether it did. Negative amounts and an empty window are refused.
    pub async fn set_price(
        &self,
        product_id: Uuid,
        p: NewPrice,
        source: ChangeSource,
    ) -> Result<Changed<Price>, StoreError> {
        let price = match p.price_type {
            PriceType::Cost => non_negative_money("amount", p.price)?,
            _ => super::common::selling_price("amount", p.price)?,
        };
        let valid_from = p.valid_from.map(|t| t.trunc_subsecs(6));
        let valid_to = p.valid_to.map(|t| t.trunc_subsecs(6));
        if let (Some(from), Some(to)) = (valid_from, valid_to) {
            if to <= from {
                return Err(invalid("valid_to", "must be after valid_from"));
            }
        }
        let (kind, currency) = (p.price_type.as_str(), price.currency().as_str());
        let amount = DbAmount::from(price.amount());
        let res = async {
            with_conn!(self.db, |conn| {
                let mut tx = conn.begin_locked(&lock_key(product_id)).await?;
                let old = sqlx::query(FIND)
                    .bind(product_id)
                    .bind(kind)
                    .bind(currency)
                    .bind(valid_from)
                    .fetch_optional(&mut *tx)
                    .await?;
                let old = old.as_ref().map(Price::from_row).transpose()?;
                let now = now();
                let stored = match &old {
                    Some(o) if o.price == price && o.valid_to == valid_to => {
                        return Ok(Changed {
                            value: o.clone(),
                            changed: false,
                        });
                    }
                    Some(o) => {
                        let sql = format!(
                            "UPDATE product_prices SET amount = $2, valid_to = $3, updated_at = $4 WHERE id = $1 \
                             RETURNING {COLUMNS}"
                        );
                        sqlx::query(&sql)
                            .bind(o.id)
                            .bind(amount)
                            .bind(valid_to)
                            .bind(now)
                            .fetch_one(&mut *tx)
                            .await?
                    }
                    None => {
                        let sql = format!(
                            "INSERT INTO product_prices ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                             RETURNING {COLUMNS}"
                        );
                        sqlx::query(&sql)
                            .bind(Uuid::now_v7())
                            .bind(product_id)
                            .bind(kind)
                            .bind(currency)
                            .bind(amount)
                            .bind(valid_from)
                            .bind(valid_to)
                            .bind(now)
                            .fetch_one(&mut *tx)
                            .await?
                    }
                };
                let stored = Price::from_row(&stored)?;
                let old_amount = old.as_ref().map(|o| o.price.amount());
                let changed = old_amount != Some(price.amount());
                if changed {
                    sqlx::query(RECORD)
                        .bind(Uuid::now_v7())
                        .bind(product_id)
                        .bind(kind)
                        .bind(currency)
                        .bind(valid_from)
                        .bind(old_amount.map(DbAmount::from))
                        .bind(Some(amount))
                        .bind(source.kind())
                        .bind(source.job_id())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                // An import's hashes of this product's offers no longer say what is stored.
                sqlx::query(super::import_batch::CLEAR_ROW_HASHES)
                    .bind(product_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Changed { value: stored, changed })
            })
        }
        .await;
        let refs = [("product_id", "products", product_id)];
        self.explain(
            res,
            || invalid("valid_from", "a price with this start exists"),
            &refs,
        )
        .await
    }

    /// The prices of a product, in creation order.
    pub async fn prices(&self, product_id: Uuid) -> Result<Vec<Price>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM product_prices WHERE product_id = $1 ORDER BY id");
        Ok(with_conn!(self.db, |conn| {
            let rows = sqlx::query(&sql).bind(product_id).fetch_all(&mut *conn).await?;
            rows.iter().map(Price::from_row).collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// Deletes a price, recording the deletion in the history.
    pub async fn delete_price(&self, id: Uuid, source: ChangeSource) -> Result<(), StoreError> {
        let product_id = self.get_entity::<Price>(id).await?.product_id;
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_locked(&lock_key(product_id)).await?;
            // The amount deleted is read under the lock, not the one read before it.
            let sql = format!("DELETE FROM product_prices WHERE id = $1 RETURNING {COLUMNS}");
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await?;
            let price = Price::from_row(&row.ok_or_else(|| not_found("price", id))?)?;
            sqlx::query(RECORD)
                .bind(Uuid::now_v7())
                .bind(price.product_id)
                .bind(price.price_type.as_str())
                .bind(price.price.currency().as_str())
                .bind(price.valid_from)
                .bind(Some(DbAmount::from(price.price.amount())))
                .bind(None::<DbAmount>)
                .bind(source.kind())
                .bind(source.job_id())
                .bind(now())
                .execute(&mut *tx)
                .await?;
            sqlx::query(super::import_batch::CLEAR_ROW_HASHES)
                .bind(product_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The price changes of a product in `[from, to)`, oldest first.
    pub async fn price_history(
        &self,
        product_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
        cursor: Option<&str>,
        with_costs: bool,
    ) -> Result<Page<PriceChange>, StoreError> {
        if with_costs {
            return self.history(product_id, from, to, limit, cursor).await;
        }
        // Without `catalog:read_costs`: cost changes are left out in the query, so that pages
        // stay full.
        let filter = "product_id = $2 AND changed_at >= $3 AND changed_at < $4 AND price_type <> 'cost'";
        let args = [Arg::Uuid(product_id), Arg::Time(from), Arg::Time(to)];
        self.list_entities(filter, &args, limit, cursor).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::catalog::common::testing::{assert_invalid, open, product};
    use crate::testing::backends;

    fn retail(amount: &str) -> NewPrice {
        NewPrice::parse("retail", amount, "EUR").unwrap()
    }

    #[tokio::test]
    async fn cost_changes_can_be_left_out_of_the_history() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let pid = product(&cat, "Costly").await;
            let start = now();
            for (t, a) in [
                ("cost", "4.10"),
                ("retail", "9.90"),
                ("cost", "4.20"),
                ("sale", "8.90"),
            ] {
                let p = NewPrice::parse(t, a, "EUR").unwrap();
                cat.set_price(pid, p, ChangeSource::Api).await.unwrap();
            }
            let end = now() + chrono::Duration::seconds(1);
            let all = cat.price_history(pid, start, end, 10, None, true).await.unwrap();
            assert_eq!(all.items.len(), 4, "{l}");
            // Pages stay full: two items a page, none of them a cost.
            let first = cat.price_history(pid, start, end, 1, None, false).await.unwrap();
            let second = cat
                .price_history(pid, start, end, 1, first.next_cursor.as_deref(), false)
                .await
                .unwrap();
            let types: Vec<_> = first
                .items
                .iter()
                .chain(&second.items)
                .map(|c| c.price_type)
                .collect();
            assert_eq!(types, [PriceType::Retail, PriceType::Sale], "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn history_only_on_change_and_by_time_range() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let pid = product(&cat, "Tab").await;
            let job = Uuid::now_v7();
            let start = now();

            let a = cat
                .set_price(pid, retail("12.5"), ChangeSource::Api)
                .await
                .unwrap();
            assert!(a.changed, "{l}");
            assert_eq!(a.value.price.amount().to_string(), "12.50", "{l}");
            // The same amount, however spelled: no change, no history.
            let same = cat
                .set_price(pid, retail("12.5000"), ChangeSource::Import { job_id: job })
                .await
                .unwrap();
            assert!(!same.changed, "{l}");
            assert_eq!(same.value, a.value);
            let b = cat
                .set_price(pid, retail("19.99"), ChangeSource::Import { job_id: job })
                .await
                .unwrap();
            assert!(b.changed);
            assert_eq!(
                (b.value.id, b.value.price.amount().to_string()),
                (a.value.id, "19.99".into()),
                "{l}"
            );
            // Another type and currency are other prices.
            cat.set_price(
                pid,
                NewPrice::parse("msrp", "24.99", "usd").unwrap(),
                ChangeSource::Api,
            )
            .await
            .unwrap();
            let prices = cat.prices(pid).await.unwrap();
            assert_eq!(prices.len(), 2, "{l}");
            assert_eq!(prices[1].price.to_string(), "24.99 USD");

            let end = now() + Duration::seconds(1);
            let h = cat.price_history(pid, start, end, 10, None, true).await.unwrap();
            let seen: Vec<_> = h
                .items
                .iter()
                .map(|c| {
                    (
                        c.old.map(|m| m.to_string()),
                        c.new.map(|m| m.to_string()),
                        c.source,
                    )
                })
                .collect();
            assert_eq!(
                seen,
                [
                    (None, Some("12.50 EUR".into()), ChangeSource::Api),
                    (
                        Some("12.50 EUR".into()),
                        Some("19.99 EUR".into()),
                        ChangeSource::Import { job_id: job }
                    ),
                    (None, Some("24.99 USD".into()), ChangeSource::Api),
                ],
                "{l}"
            );
            // Paged, and bounded in time.
            let first = cat.price_history(pid, start, end, 2, None, true).await.unwrap();
            let rest = cat
                .price_history(pid, start, end, 2, first.next_cursor.as_deref(), true)
                .await
                .unwrap();
            assert_eq!(
                (first.items.len(), rest.items.len(), rest.next_cursor),
                (2, 1, None),
                "{l}"
            );
            let before = cat
                .price_history(pid, start - Duration::hours(1), start, 10, None, true)
                .await
                .unwrap();
            assert!(before.items.is_empty(), "{l}");
            let after_b = h.items[1].changed_at;
            let later = cat
                .price_history(pid, after_b, end, 10, None, true)
                .await
                .unwrap();
            assert_eq!(later.items.len(), 2, "{l}");

            cat.delete_price(a.value.id, ChangeSource::Api).await.unwrap();
            let h = cat
                .price_history(pid, start, end + Duration::seconds(5), 10, None, true)
                .await
                .unwrap();
            let last = h.items.last().unwrap();
            assert_eq!(
                (last.old.map(|m| m.to_string()), last.new),
                (Some("19.99 EUR".into()), None),
                "{l}"
            );
            assert!(matches!(
                cat.delete_price(a.value.id, ChangeSource::Api).await,
                Err(StoreError::NotFound { .. })
            ));
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn decimals_are_exact_and_windows_are_keys() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let pid = product(&cat, "Tab").await;
            let sum = Money::parse("0.1", "EUR")
                .unwrap()
                .checked_add(Money::parse("0.2", "EUR").unwrap())
                .unwrap();
            let p = NewPrice {
                price_type: PriceType::Cost,
                price: sum,
                valid_from: None,
                valid_to: None,
            };
            let stored = cat.set_price(pid, p, ChangeSource::Api).await.unwrap().value;
            assert_eq!(stored.price.amount().to_string(), "0.30", "{l}");
            assert_eq!(stored.price.amount(), Amount::parse("0.3").unwrap());
            let big = cat
                .set_price(
                    pid,
                    NewPrice::parse("cost", "999999999999999.9999", "USD").unwrap(),
                    ChangeSource::Api,
                )
                .await
                .unwrap();
            assert_eq!(
                big.value.price.amount().to_string(),
                "999999999999999.9999",
                "{l}"
            );

            // A sale with a window is another price than the open-ended one.
            let from = now() + Duration::days(1);
            let mut sale = NewPrice::parse("sale", "9.99", "EUR").unwrap();
            sale.valid_from = Some(from);
            sale.valid_to = Some(from + Duration::days(7));
            let s = cat.set_price(pid, sale.clone(), ChangeSource::Api).await.unwrap();
            assert_eq!(s.value.valid_from, Some(from), "{l}");
            assert!(
                !cat.set_price(pid, sale.clone(), ChangeSource::Api)
                    .await
                    .unwrap()
                    .changed,
                "{l}"
            );
            let mut open_sale = sale.clone();
            open_sale.valid_from = None;
            open_sale.valid_to = None;
            cat.set_price(pid, open_sale, ChangeSource::Api).await.unwrap();
            assert_eq!(cat.prices(pid).await.unwrap().len(), 4, "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }

    #[tokio::test]
    async fn bad_prices_name_their_field() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let pid = product(&cat, "Tab").await;
            assert_invalid(NewPrice::parse("retail", "1.00", "EURO"), "currency", l);
            assert_invalid(NewPrice::parse("retail", "1,00", "EUR"), "amount", l);
            assert_invalid(NewPrice::parse("retail", "1e3", "EUR"), "amount", l);
            assert_invalid(NewPrice::parse("retail", "0.00001", "EUR"), "amount", l);
            assert_invalid(NewPrice::parse("wholesale", "1", "EUR"), "price_type", l);
            assert_invalid(
                cat.set_price(pid, retail("-1"), ChangeSource::Api).await,
                "amount",
                l,
            );
            let mut p = retail("1");
            p.valid_from = Some(now());
            p.valid_to = p.valid_from;
            assert_invalid(cat.set_price(pid, p, ChangeSource::Api).await, "valid_to", l);
            assert_invalid(
                cat.set_price(Uuid::now_v7(), retail("1"), ChangeSource::Api)
                    .await,
                "product_id",
                l,
            );
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
