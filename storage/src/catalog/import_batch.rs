//! An import's batch, written in one transaction: the products (the bulk upsert's rules), then
//! their prices and stock and the supplier's offers, each read once for the whole batch,
//! compared in memory and written with multi-row statements only where something changed.
//! History rows carry the job id; what the job did to products and offers is journaled in the
//! same transaction (`import_product_changes`, `import_offer_changes`), which is what
//! [`Catalog::rollback_import`] undoes.
//!
//! An unchanged row costs one index probe: the offer keeps a hash of what the row last wrote
//! (`row_hash`, see [`row_hash`]) and the product's version then (`row_version`); a row whose
//! hash matches is `Unchanged` without any write. Whatever else writes the row's values clears
//! the hash, so the next import writes such rows again: a write of the product (its version
//! moves; a trigger of migration 0014 clears its offers' hashes), and writes of its prices,
//! stocks or of the offer by anything but this batch (`clear_row_hashes`).
//!
//! Why one transaction per batch: a row's product, prices, stock and offer land together or
//! not at all, so a job cut off mid-file (a crash, a lost lease) leaves whole batches behind,
//! and its rerun finds them unchanged. And one commit per 1,000 rows instead of four per row is
//! most of the speed (see BENCHMARKS.md).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use pm_domain::{Amount, Money};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use super::common::{non_negative_money, now, quantity, selling_price, DbAmount, Entity, RowExt};
use super::prices::{Price, PriceType};
use super::products::{
    placeholders, product_from_row, upsert_items, NewProduct, Product, UpsertResult, COLUMNS, SKU_LOCK,
};
use super::stocks::Stock;
use super::suppliers::SupplierProduct;
use super::Catalog;
use crate::db::BeginLocked;
use crate::{with_conn, Backend, StoreError};

/// The hasher of the per-row maps of a batch (see `unchanged_rows`).
type FastHash = foldhash::fast::RandomState;

/// Rows of one multi-row statement at most (bind parameters stay far below SQLite's 32,766).
/// Statements over many rows are not kept prepared (`persistent(false)`): their text varies
/// with the row count, and PostgreSQL then plans each with its values instead of a generic
/// plan that may pick a poor index for a long `IN` list.
const CHUNK: usize = 500;

/// One row of an import: the product, and what the supplier says of it.
#[derive(Debug, Clone, Default)]
pub struct ImportRow {
    pub product: NewProduct,
    /// Prices without a validity window (an import states today's prices).
    pub prices: Vec<(PriceType, Money)>,
    /// The stock in the batch's warehouse.
    pub stock: Option<i64>,
    /// The supplier's offer under its own reference.
    pub offer: Option<ImportOffer>,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOffer {
    pub supplier_sku: String,
    pub cost: Option<Money>,
    pub stock: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ImportBatch {
    pub job_id: Uuid,
    pub supplier_id: Uuid,
    /// Where the rows' stock goes (the supplier's code).
    pub warehouse: String,
    pub rows: Vec<ImportRow>,
    /// A full import: rows found unchanged are still marked as listed by the job
    /// (`last_seen_import`), which its end tells missing offers apart by. A delta import
    /// writes nothing for them.
    pub full: bool,
}

/// What happened to one row, in input order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportOutcome {
    pub product: UpsertResult,
    pub prices_changed: u32,
    pub stock_changed: bool,
    pub offer_changed: bool,
    /// Values of the row that were refused (field, reason) while the rest landed.
    pub refused: Vec<(&'static str, String)>,
}

/// What a rollback did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RollbackReport {
    /// Products the job created, moved to the trash.
    pub products_removed: u64,
    /// Products the job updated, back to what they were.
    pub products_restored: u64,
    pub prices_restored: u64,
    pub stocks_restored: u64,
    pub offers_restored: u64,
    /// Values changed again since the job (by a person or a later import): left as they are.
    pub kept_changed_since: u64,
    /// Product ids whose rows changed (for the caches).
    #[serde(skip)]
    pub product_ids: Vec<Uuid>,
}

/// The missing products of a full import: offers of the supplier the job did not list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MissingReport {
    /// Offers set to supplier stock 0.
    pub offers: u64,
    /// Stocks in the supplier's warehouse set to 0.
    pub stocks: u64,
    #[serde(skip)]
    pub product_ids: Vec<Uuid>,
}

/// A bound value of the statements built here.
#[derive(Debug, Clone)]
enum V {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    Time(DateTime<Utc>),
    /// A whole column of a multi-row insert on PostgreSQL (see [`multi`]); never on SQLite.
    Col(Col),
}

/// One column's values, bound as one PostgreSQL array.
#[derive(Debug, Clone)]
enum Col {
    Uuid(Vec<Option<Uuid>>),
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
    Time(Vec<DateTime<Utc>>),
}

impl Col {
    /// An empty column for values like `v`, and its array type.
    fn like(v: &V, rows: usize) -> Option<(Col, &'static str)> {
        Some(match v {
            V::Uuid(_) => (Col::Uuid(Vec::with_capacity(rows)), "uuid[]"),
            V::Text(_) => (Col::Text(Vec::with_capacity(rows)), "text[]"),
            V::Int(_) => (Col::Int(Vec::with_capacity(rows)), "int8[]"),
            V::Bool(_) => (Col::Bool(Vec::with_capacity(rows)), "bool[]"),
            V::Time(_) => (Col::Time(Vec::with_capacity(rows)), "timestamptz[]"),
            V::Col(_) => return None,
        })
    }

    /// Appends `v`; `false` when it is not of the column's type.
    fn push(&mut self, v: &V) -> bool {
        match (self, v) {
            (Col::Uuid(c), V::Uuid(x)) => c.push(*x),
            (Col::Text(c), V::Text(x)) => c.push(x.clone()),
            (Col::Int(c), V::Int(x)) => c.push(*x),
            (Col::Bool(c), V::Bool(x)) => c.push(*x),
            (Col::Time(c), V::Time(x)) => c.push(*x),
            _ => return false,
        }
        true
    }
}

/// Binds a [`Col`]: as an array on PostgreSQL. SQLite has no arrays and [`multi`] never makes
/// a `Col` for it; were one bound there, it would be a NULL and the statement would fail.
trait BindCol: Sized {
    fn bind_col(self, c: &Col) -> Self;
}

impl<'q> BindCol for sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    fn bind_col(self, c: &Col) -> Self {
        match c {
            Col::Uuid(v) => self.bind(v.clone()),
            Col::Text(v) => self.bind(v.clone()),
            Col::Int(v) => self.bind(v.clone()),
            Col::Bool(v) => self.bind(v.clone()),
            Col::Time(v) => self.bind(v.clone()),
        }
    }
}

impl<'q> BindCol for sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    fn bind_col(self, _c: &Col) -> Self {
        self.bind(None::<String>)
    }
}

/// Binds `$args` (`&[V]`) to `$q` in order (a macro: the query type differs per backend).
macro_rules! bind_v {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                V::Uuid(v) => q.bind(*v),
                V::Text(v) => q.bind(v.clone()),
                V::Int(v) => q.bind(*v),
                V::Bool(v) => q.bind(*v),
                V::Time(v) => q.bind(*v),
                V::Col(c) => BindCol::bind_col(q, c),
            };
        }
        q
    }};
}

/// A statement over many rows: `head`, then one `(…)` group per row from `cols` (each `?` a
/// placeholder, `#` a decimal placeholder, cast to NUMERIC on PostgreSQL), then `tail`.
struct Multi {
    sql: String,
    args: Vec<V>,
    backend: Backend,
    /// Kept prepared: the text is the same whatever the row count (PostgreSQL's arrays).
    persistent: bool,
}

impl Multi {
    /// The statement as sent (see [`super::common::positional`]).
    fn text(&self) -> std::borrow::Cow<'_, str> {
        super::common::positional(self.backend, &self.sql)
    }
}

fn multi(backend: Backend, head: &str, cols: &str, rows: &[Vec<V>], tail: &str) -> Multi {
    if backend == Backend::Postgres {
        if let Some(m) = unnest(head, cols, rows, tail) {
            return m;
        }
    }
    let mut sql = String::with_capacity(head.len() + rows.len() * (cols.len() + 24) + tail.len());
    sql.push_str(head);
    let mut args = Vec::with_capacity(rows.len() * rows.first().map_or(0, Vec::len));
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in cols.chars() {
            match c {
                '?' | '#' => {
                    args.push(V::Int(None)); // replaced below, keeps numbering in order
                    let n = args.len();
                    if c == '#' && backend == Backend::Postgres {
                        sql.push_str(&format!("CAST(${n} AS NUMERIC)"));
                    } else {
                        sql.push_str(&format!("${n}"));
                    }
                }
                other => sql.push(other),
            }
        }
        sql.push(')');
        let start = args.len() - row.len();
        for (slot, v) in args[start..].iter_mut().zip(row) {
            *slot = v.clone();
        }
    }
    sql.push_str(tail);
    Multi {
        sql,
        args,
        backend,
        persistent: false,
    }
}

/// [`multi`]'s `INSERT INTO t (…) VALUES` on PostgreSQL as `INSERT INTO t (…) SELECT … FROM
/// UNNEST($1::uuid[], $2::text[], …)`: one array per column, so the statement's text does not
/// depend on the row count and stays prepared, instead of a statement of thousands of
/// parameters parsed and planned at every batch. `None` for other statements (and for
/// values of mixed types in a column), which keep the `VALUES` list.
fn unnest(head: &str, cols: &str, rows: &[Vec<V>], tail: &str) -> Option<Multi> {
    let insert = head.trim_end().strip_suffix("VALUES")?.trim_end();
    if !insert.trim_start().starts_with("INSERT INTO") || !insert.trim_end().ends_with(')') {
        return None;
    }
    let first = rows.first()?;
    let mut columns: Vec<(Col, &'static str)> = Vec::with_capacity(first.len());
    for v in first {
        columns.push(Col::like(v, rows.len())?);
    }
    for row in rows {
        if row.len() != columns.len() {
            return None;
        }
        for ((c, _), v) in columns.iter_mut().zip(row) {
            if !c.push(v) {
                return None;
            }
        }
    }
    let mut select = String::with_capacity(cols.len() + 8 * columns.len());
    let mut k = 0;
    for ch in cols.chars() {
        match ch {
            '?' | '#' => {
                k += 1;
                if ch == '#' {
                    select.push_str(&format!("CAST(u.c{k} AS NUMERIC)"));
                } else {
                    select.push_str(&format!("u.c{k}"));
                }
            }
            other => select.push(other),
        }
    }
    if k != columns.len() {
        return None;
    }
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{ty}", i + 1))
        .collect();
    let names: Vec<String> = (1..=k).map(|i| format!("c{i}")).collect();
    let sql = format!(
        "{insert} SELECT {select} FROM UNNEST({}) AS u ({}){tail}",
        arrays.join(", "),
        names.join(", ")
    );
    Some(Multi {
        sql,
        args: columns.into_iter().map(|(c, _)| V::Col(c)).collect(),
        backend: Backend::Postgres,
        persistent: true,
    })
}

fn amount_text(a: Amount) -> Option<String> {
    Some(DbAmount::from(a).0.to_string())
}

/// Bumped when what [`row_hash`] covers changes: every stored hash then differs and the next
/// import writes every row once.
const ROW_HASH_TAG: &[u8] = b"pm.import_row.1";

/// The first 64 bits of the SHA-256 of everything `row` would write in `warehouse` (the
/// product's fields, the prices, the stock, the offer), each value length-prefixed so that no
/// two rows share an encoding. Stable across builds and versions (not std's `DefaultHasher`).
#[cfg(test)]
pub(crate) fn row_hash(warehouse: &str, row: &ImportRow) -> i64 {
    row_hash_in(&mut Vec::new(), warehouse, row)
}

/// [`row_hash`], its bytes gathered in `buf` (reused from row to row) and hashed at once:
/// the same bytes as feeding the hasher value by value, without its bookkeeping per value.
fn row_hash_in(buf: &mut Vec<u8>, warehouse: &str, row: &ImportRow) -> i64 {
    struct H<'a>(&'a mut Vec<u8>);
    impl H<'_> {
        fn text(&mut self, v: Option<&str>) {
            match v {
                None => self.0.push(0),
                Some(s) => {
                    self.0.push(1);
                    self.0.extend_from_slice(&(s.len() as u64).to_le_bytes());
                    self.0.extend_from_slice(s.as_bytes());
                }
            }
        }
        fn int(&mut self, v: Option<i64>) {
            match v {
                None => self.0.push(0),
                Some(n) => {
                    self.0.push(1);
                    self.0.extend_from_slice(&n.to_le_bytes());
                }
            }
        }
        fn uuid(&mut self, v: Option<Uuid>) {
            match v {
                None => self.0.push(0),
                Some(u) => {
                    self.0.push(1);
                    self.0.extend_from_slice(u.as_bytes());
                }
            }
        }
        fn money(&mut self, v: Option<Money>) {
            self.text(v.map(|m| m.currency().as_str()));
            self.text(v.and_then(|m| amount_text(m.amount())).as_deref());
        }
    }
    buf.clear();
    let mut h = H(buf);
    h.0.extend_from_slice(ROW_HASH_TAG);
    h.text(Some(warehouse));
    let p = &row.product;
    h.text(p.ean.as_ref().map(pm_domain::Gtin::as_str));
    h.text(p.sku.as_deref());
    h.text(p.asin.as_ref().map(pm_domain::Asin::as_str));
    h.text(Some(&p.title));
    h.text(p.description.as_deref());
    h.text(p.brand.as_deref());
    h.uuid(p.brand_id);
    h.uuid(p.primary_category_id);
    h.text(Some(p.status.as_str()));
    for v in [p.weight_grams, p.length_mm, p.width_mm, p.height_mm] {
        h.int(v.map(i64::from));
    }
    // The same attributes in the same order, the same text.
    if p.attributes.is_empty() {
        h.text(Some("{}"));
    } else {
        h.text(serde_json::to_string(&p.attributes).ok().as_deref());
    }
    h.int(Some(row.prices.len() as i64));
    for (price_type, money) in &row.prices {
        h.text(Some(price_type.as_str()));
        h.money(Some(*money));
    }
    h.int(row.stock);
    match &row.offer {
        None => h.int(None),
        Some(o) => {
            h.int(Some(1));
            h.text(Some(&o.supplier_sku));
            h.money(o.cost);
            h.int(o.stock);
        }
    }
    let digest = Sha256::digest(&h.0[..]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// Per row: the offer's key (its supplier SKU) and the row's hash, for rows with an offer.
fn keys_and_hashes<'a>(warehouse: &str, rows: &'a [ImportRow]) -> (Vec<Option<&'a str>>, Vec<Option<i64>>) {
    let mut buf = Vec::with_capacity(1024);
    rows.iter()
        .map(|r| match &r.offer {
            None => (None, None),
            Some(o) => (
                super::common::text_ref("supplier_sku", &o.supplier_sku, 128).ok(),
                Some(row_hash_in(&mut buf, warehouse, r)),
            ),
        })
        .unzip()
}

/// A price or stock to write, decided before the writes.
struct PriceWrite {
    product_id: Uuid,
    price_type: PriceType,
    price: Money,
    existing: Option<Price>,
}

struct StockWrite {
    product_id: Uuid,
    quantity: i64,
    old: Option<i64>,
}

struct OfferWrite {
    product_id: Uuid,
    sku: String,
    cost: Option<Money>,
    stock: Option<i64>,
    existing: Option<SupplierProduct>,
}

/// Executes a [`Multi`] on `$tx` (an open transaction of either backend).
macro_rules! exec_multi {
    ($tx:ident, $m:expr) => {{
        let m: Multi = $m;
        let text = m.text();
        bind_v!(sqlx::query(&text).persistent(m.persistent), &m.args)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Clears the import hashes of a product's offers (its prices, stocks or an offer were written
/// by something else than an import's batch): the next import writes their rows again.
pub(super) const CLEAR_ROW_HASHES: &str =
    "UPDATE supplier_products SET row_hash = NULL WHERE product_id = $1 AND row_hash IS NOT NULL";

/// [`CLEAR_ROW_HASHES`] for many products on `$tx` (an open transaction of either backend).
macro_rules! clear_row_hashes {
    ($tx:ident, $ids:expr) => {{
        let ids: &[Uuid] = $ids;
        for part in ids.chunks(CHUNK) {
            let sql = format!(
                "UPDATE supplier_products SET row_hash = NULL WHERE row_hash IS NOT NULL AND product_id IN {}",
                placeholders(0, part.len())
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for id in part {
                q = q.bind(*id);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

impl Catalog {
    /// Refreshes the planner's statistics of the tables an import writes (PostgreSQL; nothing
    /// on SQLite). A bulk load outgrows them long before autovacuum (if on) catches up, and
    /// with a catalog ten times larger than the planner believes, the batch's `IN` lookups
    /// pick a scan of a whole index (measured: 550 ms a lookup at 800,000 products).
    pub async fn analyze_import_tables(&self) -> Result<(), StoreError> {
        let crate::Pool::Postgres(pool) = &self.db.pool else {
            return Ok(());
        };
        let mut conn = self.db.acquire(pool).await?;
        sqlx::query("ANALYZE products, supplier_products, product_prices, product_stocks")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Writes an import's batch (at most [`super::MAX_UPSERT_BATCH`] rows) and says per row
    /// what happened. Rows the offer's hash finds unchanged write nothing (a full import marks
    /// them listed); the others go through [`Catalog::write_rows`] in one transaction. Rows
    /// whose product is refused write nothing else; a price, stock or offer value that is
    /// refused (a negative amount, say) fails alone.
    pub async fn import_batch(&self, batch: ImportBatch) -> Result<Vec<ImportOutcome>, StoreError> {
        let ImportBatch {
            job_id,
            supplier_id,
            warehouse,
            rows,
            full,
        } = batch;
        if rows.len() > super::MAX_UPSERT_BATCH {
            return Err(StoreError::Invalid {
                field: "rows",
                reason: format!("at most {} rows per batch", super::MAX_UPSERT_BATCH),
            });
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let warehouse = super::common::code("warehouse", &warehouse, 64)?;
        let (keys, hashes) = keys_and_hashes(&warehouse, &rows);
        let skipped = self.unchanged_rows(supplier_id, &keys, &hashes).await?;
        if full {
            let seen: Vec<&str> = keys.iter().zip(&skipped).filter_map(|(k, s)| s.and(*k)).collect();
            self.mark_seen(job_id, supplier_id, &seen).await?;
        }
        if skipped.iter().all(Option::is_none) {
            return self
                .write_rows(job_id, supplier_id, warehouse, rows, hashes)
                .await;
        }
        let (mut rest, mut rest_hashes) = (Vec::new(), Vec::new());
        for ((row, hash), s) in rows.into_iter().zip(hashes).zip(&skipped) {
            if s.is_none() {
                rest.push(row);
                rest_hashes.push(hash);
            }
        }
        let mut written = if rest.is_empty() {
            Vec::new()
        } else {
            self.write_rows(job_id, supplier_id, warehouse, rest, rest_hashes)
                .await?
        }
        .into_iter();
        let mut out = Vec::with_capacity(skipped.len());
        for s in skipped {
            out.push(match s {
                Some(id) => ImportOutcome {
                    product: UpsertResult::Unchanged { id },
                    prices_changed: 0,
                    stock_changed: false,
                    offer_changed: false,
                    refused: Vec::new(),
                },
                None => written
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("an import row without its outcome".into()))?,
            });
        }
        Ok(out)
    }

    /// A dry run's forecast: per row, whether [`Catalog::import_batch`] would find it unchanged
    /// and write nothing for it (the same lookup, no write).
    pub async fn unchanged_import_rows(
        &self,
        supplier_id: Uuid,
        warehouse: &str,
        rows: &[ImportRow],
    ) -> Result<Vec<bool>, StoreError> {
        let warehouse = super::common::code("warehouse", warehouse, 64)?;
        let (keys, hashes) = keys_and_hashes(&warehouse, rows);
        let skipped = self.unchanged_rows(supplier_id, &keys, &hashes).await?;
        Ok(skipped.iter().map(Option::is_some).collect())
    }

    /// Per row: the product id when the row is as its offer's hash says it last wrote it and
    /// nothing wrote its values since (one lookup for the batch). A supplier
    /// SKU listed twice in the batch, or a product another written row of the batch has, is
    /// written.
    async fn unchanged_rows(
        &self,
        supplier_id: Uuid,
        keys: &[Option<&str>],
        hashes: &[Option<i64>],
    ) -> Result<Vec<Option<Uuid>>, StoreError> {
        // Hashed with foldhash: this is per row, and the keys are the file's own, not an
        // attacker's choice of collisions worth SipHash's cost.
        let mut count: HashMap<&str, usize, FastHash> = HashMap::default();
        for k in keys.iter().flatten() {
            *count.entry(*k).or_default() += 1;
        }
        // The offers alone: a write of the product clears their hashes (a trigger, migration
        // 0014), so a hash still there says the product is as the row left it. Joining the
        // products here instead doubled this lookup's cost (measured: 4.6 against 2.4 ms a
        // batch).
        let mut wanted: Vec<&str> = count.keys().copied().collect();
        wanted.sort_unstable();
        // The rows found, kept while `by_sku` borrows their SKUs (a `String` of its own per row
        // was an allocation per row).
        let (found_pg, mut found_lite): (Vec<sqlx::postgres::PgRow>, Vec<sqlx::sqlite::SqliteRow>);
        let mut by_sku: HashMap<&str, (Uuid, Option<i64>), FastHash> = HashMap::default();
        const SELECT: &str = "SELECT supplier_sku, product_id, row_hash FROM supplier_products \
             WHERE supplier_id = $1 AND supplier_sku";
        match &self.db.pool {
            // One prepared statement over an array for the whole batch: this lookup is all an
            // unchanged row costs, and a 1,000-value `IN` list is parsed and planned per call.
            // (A join with `unnest($2) WITH ORDINALITY`, which answers with the rows' places
            // instead of their SKUs, was measured slower: 2.9 against 2.4 ms a batch.)
            crate::Pool::Postgres(pool) => {
                let mut conn = self.db.acquire(pool).await?;
                found_pg = sqlx::query(&format!("{SELECT} = ANY($2)"))
                    .bind(supplier_id)
                    .bind(&wanted)
                    .fetch_all(&mut *conn)
                    .await?;
                for r in &found_pg {
                    by_sku.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
                }
            }
            crate::Pool::Sqlite(pool) => {
                let mut conn = self.db.acquire(pool).await?;
                found_lite = Vec::new();
                for part in wanted.chunks(CHUNK) {
                    let sql = format!("{SELECT} IN {}", placeholders(1, part.len()));
                    let sql = super::common::positional(Backend::Sqlite, &sql);
                    let mut q = sqlx::query(&sql).persistent(false).bind(supplier_id);
                    for k in part {
                        q = q.bind(*k);
                    }
                    found_lite.extend(q.fetch_all(&mut *conn).await?);
                }
                for r in &found_lite {
                    by_sku.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
                }
            }
        }
        // Per row: (product, the hash while still valid) of its offer, when there is one.
        let stored: Vec<Option<(Uuid, Option<i64>)>> = keys
            .iter()
            .map(|k| k.and_then(|k| by_sku.get(k)).copied())
            .collect();
        let mut out: Vec<Option<Uuid>> = keys
            .iter()
            .zip(hashes)
            .zip(&stored)
            .map(|((k, h), s)| {
                let k = (*k)?;
                let (product, stored_hash) = (*s)?;
                (count[k] == 1 && stored_hash.is_some() && stored_hash == *h).then_some(product)
            })
            .collect();
        // Rows written that name a product a skipped row has: that row is written too, so the
        // batch's rows of one product land in file order.
        let written: HashSet<Uuid, FastHash> = stored
            .iter()
            .zip(&out)
            .filter(|(_, s)| s.is_none())
            .filter_map(|(st, _)| st.map(|(p, _)| p))
            .collect();
        for s in &mut out {
            if s.is_some_and(|p| written.contains(&p)) {
                *s = None;
            }
        }
        Ok(out)
    }

    /// A full import's unchanged rows: listed by the job (what its end tells missing offers
    /// apart by), one statement per chunk.
    async fn mark_seen(&self, job_id: Uuid, supplier_id: Uuid, skus: &[&str]) -> Result<(), StoreError> {
        if skus.is_empty() {
            return Ok(());
        }
        let t = now();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            for part in skus.chunks(CHUNK) {
                let sql = format!(
                    "UPDATE supplier_products SET last_seen_import = $1, last_seen_at = $2 \
                     WHERE supplier_id = $3 AND supplier_sku IN {}",
                    placeholders(3, part.len())
                );
                let mut q = sqlx::query(&sql)
                    .persistent(false)
                    .bind(job_id)
                    .bind(t)
                    .bind(supplier_id);
                for s in part {
                    q = q.bind(*s);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The rows of a batch the hashes did not find unchanged, in one transaction; `hashes[i]`
    /// is stored with row `i`'s offer (unless a value of the row was refused).
    async fn write_rows(
        &self,
        job_id: Uuid,
        supplier_id: Uuid,
        warehouse: String,
        rows: Vec<ImportRow>,
        hashes: Vec<Option<i64>>,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        // Batches run side by side (two of an import on PostgreSQL, other suppliers' imports),
        // so two may lock rows in opposite orders: PostgreSQL then aborts one transaction with
        // a deadlock (or a serialization failure). It rolled back whole: it starts again.
        let mut attempt = 1;
        loop {
            match self
                .write_rows_once(job_id, supplier_id, &warehouse, &rows, &hashes)
                .await
            {
                Err(e) if attempt < 3 && e.is_retryable_conflict() => {
                    tracing::info!(job = %job_id, attempt, error = %e, "import batch written again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn write_rows_once(
        &self,
        job_id: Uuid,
        supplier_id: Uuid,
        warehouse: &str,
        rows: &[ImportRow],
        hashes: &[Option<i64>],
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let backend = self.db.backend();
        let products: Vec<NewProduct> = rows.iter().map(|r| r.product.clone()).collect();
        let missing = self.missing_refs(&products).await?;
        let eans: Vec<String> = products
            .iter()
            .filter_map(|p| p.ean.map(|e| e.as_str().to_owned()))
            .collect();
        let skus: Vec<String> = products
            .iter()
            .filter_map(|p| p.sku.as_ref().map(|s| s.to_lowercase()))
            .collect();
        // Rows keyed by SKU alone: the batch takes the SKU lock alone, like any bulk upsert
        // that keys items by SKU.
        let sku_keyed = products.iter().any(|p| p.ean.is_none() && p.sku.is_some());
        let ean_skus: Vec<String> = products
            .iter()
            .filter(|p| p.ean.is_some())
            .filter_map(|p| p.sku.as_ref().map(|s| s.to_lowercase()))
            .collect();
        let write_time = now();
        with_conn!(self.db, |conn| {
            // A batch of rows that all have an EAN takes the SKU lock shared: such batches run
            // side by side (an import keeps two in flight on PostgreSQL), since products keyed
            // by EAN meet on the EAN's unique index. Unless one of its rows would join a
            // product known by its SKU alone (the EAN joins that product): that is a write
            // keyed by SKU, so the batch starts again with the lock alone. Under the shared
            // lock no bulk writer can create such a product, so the check holds until commit.
            // Prices and stocks of the batch's products are locked below, in one sorted
            // statement.
            // `sku_only_possible`: whether the upsert must still look for products known by a
            // row's SKU alone (under the shared lock this check found none).
            let (mut tx, sku_only_possible) = if sku_keyed {
                (conn.begin_locked(SKU_LOCK).await?, true)
            } else {
                let mut tx = conn.begin_shared(SKU_LOCK).await?;
                let mut joins = false;
                for part in ean_skus.chunks(CHUNK) {
                    let sql = format!(
                        "SELECT 1 FROM products WHERE deleted_at IS NULL AND {} AND lower(sku) IN {} LIMIT 1",
                        super::products::NO_EAN,
                        placeholders(0, part.len())
                    );
                    let mut q = sqlx::query_scalar::<_, i32>(&sql).persistent(false);
                    for k in part {
                        q = q.bind(k.as_str());
                    }
                    if q.fetch_optional(&mut *tx).await?.is_some() {
                        joins = true;
                        break;
                    }
                }
                if joins {
                    tx.rollback().await?;
                    (conn.begin_locked(SKU_LOCK).await?, true)
                } else {
                    (tx, false)
                }
            };

            // The products as they were, for the journal (what a rollback restores).
            let mut before: HashMap<Uuid, Product> = HashMap::new();
            for (column, keys) in [("ean", &eans), ("lower(sku)", &skus)] {
                for part in keys.chunks(CHUNK) {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM products WHERE deleted_at IS NULL AND {column} IN {}",
                        placeholders(0, part.len())
                    );
                    let mut q = sqlx::query(&sql).persistent(false);
                    for v in part {
                        q = q.bind(v.as_str());
                    }
                    for row in q.fetch_all(&mut *tx).await? {
                        let p = product_from_row(&row)?;
                        before.insert(p.id, p);
                    }
                }
            }

            let results = upsert_items!(tx, &products, &missing, write_time, backend, sku_only_possible);
            let mut out: Vec<ImportOutcome> = results
                .into_iter()
                .map(|product| ImportOutcome {
                    product,
                    prices_changed: 0,
                    stock_changed: false,
                    offer_changed: false,
                    refused: Vec::new(),
                })
                .collect();
            let id_of = |o: &ImportOutcome| match o.product {
                UpsertResult::Created { id }
                | UpsertResult::Updated { id }
                | UpsertResult::Unchanged { id } => Some(id),
                UpsertResult::Failed { .. } => None,
            };

            // The products' versions once written (stored with the offers' hashes).
            let mut version_of: HashMap<Uuid, i64> = before.iter().map(|(id, p)| (*id, p.version)).collect();

            // The journal: created and updated products with their version now.
            let touched: Vec<(Uuid, bool)> = out
                .iter()
                .filter_map(|o| match o.product {
                    UpsertResult::Created { id } => Some((id, true)),
                    UpsertResult::Updated { id } => Some((id, false)),
                    _ => None,
                })
                .collect();
            for part in touched.chunks(CHUNK) {
                let sql = format!(
                    "SELECT id, version FROM products WHERE id IN {}",
                    placeholders(0, part.len())
                );
                let mut q = sqlx::query_as::<_, (Uuid, i64)>(&sql).persistent(false);
                for (id, _) in part {
                    q = q.bind(*id);
                }
                let versions: HashMap<Uuid, i64> = q.fetch_all(&mut *tx).await?.into_iter().collect();
                version_of.extend(versions.iter().map(|(id, v)| (*id, *v)));
                let rows: Vec<Vec<V>> = part
                    .iter()
                    .map(|(id, created)| {
                        let prior = if *created { None } else { before.get(id) };
                        vec![
                            V::Uuid(Some(job_id)),
                            V::Uuid(Some(*id)),
                            V::Bool(*created),
                            V::Text(prior.and_then(|p| serde_json::to_string(p).ok())),
                            V::Int(Some(versions.get(id).copied().unwrap_or(1))),
                            V::Time(write_time),
                        ]
                    })
                    .collect();
                let before_col = if backend == Backend::Postgres {
                    "CAST(? AS JSONB)"
                } else {
                    "?"
                };
                exec_multi!(
                    tx,
                    multi(
                        backend,
                        "INSERT INTO import_product_changes (job_id, product_id, created, before, version_after, changed_at) VALUES ",
                        &format!("?, ?, ?, {before_col}, ?, ?"),
                        &rows,
                        " ON CONFLICT (job_id, product_id) DO UPDATE SET version_after = excluded.version_after",
                    )
                );
            }

            // Prices and stocks: the last row of a product wins; values checked one by one.
            let mut price_rows: HashMap<Uuid, usize> = HashMap::new();
            for (i, o) in out.iter().enumerate() {
                if let Some(id) = id_of(o) {
                    price_rows.insert(id, i);
                }
            }
            let mut ids: Vec<Uuid> = price_rows.keys().copied().collect();
            ids.sort();
            if backend == Backend::Postgres {
                // The locks set_price and set_stock take, in sorted order (no deadlock between
                // two batches, none with a single-key writer).
                let mut keys: Vec<String> = ids
                    .iter()
                    .flat_map(|id| [format!("catalog.prices.{id}"), format!("catalog.stocks.{id}")])
                    .collect();
                keys.sort();
                for part in keys.chunks(CHUNK) {
                    let values: Vec<Vec<V>> = part.iter().map(|k| vec![V::Text(Some(k.clone()))]).collect();
                    let m = multi(
                        backend,
                        "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM \
                         (SELECT k FROM (VALUES ",
                        "CAST(? AS TEXT)",
                        &values,
                        ") AS t (k) ORDER BY k) AS s",
                    );
                    let text = m.text();
                    bind_v!(sqlx::query(&text).persistent(false), &m.args)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let mut existing_prices: HashMap<(Uuid, PriceType, String), Price> = HashMap::new();
            let mut existing_stocks: HashMap<Uuid, Stock> = HashMap::new();
            for part in ids.chunks(CHUNK) {
                let sql = format!(
                    "SELECT id, product_id, price_type, currency, amount, valid_from, valid_to, updated_at \
                     FROM product_prices WHERE valid_from IS NULL AND product_id IN {}",
                    placeholders(0, part.len())
                );
                let mut q = sqlx::query(&sql).persistent(false);
                for id in part {
                    q = q.bind(*id);
                }
                for row in q.fetch_all(&mut *tx).await? {
                    let p = Price::from_row(&row)?;
                    existing_prices.insert(
                        (p.product_id, p.price_type, p.price.currency().as_str().to_owned()),
                        p,
                    );
                }
                let sql = format!(
                    "SELECT id, product_id, warehouse, quantity, updated_at FROM product_stocks \
                     WHERE warehouse = $1 AND product_id IN {}",
                    placeholders(1, part.len())
                );
                let mut q = sqlx::query(&sql).persistent(false).bind(warehouse);
                for id in part {
                    q = q.bind(*id);
                }
                for row in q.fetch_all(&mut *tx).await? {
                    let s = Stock::from_row(&row)?;
                    existing_stocks.insert(s.product_id, s);
                }
            }
            let mut prices: Vec<(usize, PriceWrite)> = Vec::new();
            let mut stocks: Vec<(usize, StockWrite)> = Vec::new();
            let mut order: Vec<(Uuid, usize)> = price_rows.iter().map(|(id, i)| (*id, *i)).collect();
            order.sort_by_key(|(_, i)| *i);
            for (product_id, i) in order {
                let row = &rows[i];
                for (price_type, money) in &row.prices {
                    let checked = match price_type {
                        PriceType::Cost => non_negative_money("amount", *money),
                        _ => selling_price("amount", *money),
                    };
                    let money = match checked {
                        Ok(m) => m,
                        Err(e) => {
                            out[i].refused.push((price_type.as_str(), e.to_string()));
                            continue;
                        }
                    };
                    let existing = existing_prices
                        .get(&(product_id, *price_type, money.currency().as_str().to_owned()))
                        .cloned();
                    if existing
                        .as_ref()
                        .is_some_and(|e| e.price == money && e.valid_to.is_none())
                    {
                        continue;
                    }
                    prices.push((
                        i,
                        PriceWrite {
                            product_id,
                            price_type: *price_type,
                            price: money,
                            existing,
                        },
                    ));
                }
                if let Some(q) = row.stock {
                    match quantity("stock", q) {
                        Err(e) => out[i].refused.push(("stock", e.to_string())),
                        Ok(q) => {
                            let old = existing_stocks.get(&product_id).map(|s| s.quantity);
                            if old != Some(q) {
                                stocks.push((
                                    i,
                                    StockWrite {
                                        product_id,
                                        quantity: q,
                                        old,
                                    },
                                ));
                            }
                        }
                    }
                }
            }
            // Prices: new ones in multi-row inserts, changed ones one update each; a history
            // row for every changed amount.
            let mut history: Vec<Vec<V>> = Vec::new();
            let mut inserts: Vec<Vec<V>> = Vec::new();
            for (i, w) in &prices {
                let amount = amount_text(w.price.amount());
                let currency = w.price.currency().as_str().to_owned();
                match &w.existing {
                    Some(e) => {
                        let sql = if backend == Backend::Postgres {
                            "UPDATE product_prices SET amount = CAST($2 AS NUMERIC), valid_to = NULL, updated_at = $3 WHERE id = $1"
                        } else {
                            "UPDATE product_prices SET amount = $2, valid_to = NULL, updated_at = $3 WHERE id = $1"
                        };
                        sqlx::query(sql)
                            .bind(e.id)
                            .bind(amount.clone())
                            .bind(write_time)
                            .execute(&mut *tx)
                            .await?;
                    }
                    None => inserts.push(vec![
                        V::Uuid(Some(Uuid::now_v7())),
                        V::Uuid(Some(w.product_id)),
                        V::Text(Some(w.price_type.as_str().to_owned())),
                        V::Text(Some(currency.clone())),
                        V::Text(amount.clone()),
                        V::Time(write_time),
                    ]),
                }
                let old = w.existing.as_ref().map(|e| e.price.amount());
                if old != Some(w.price.amount()) {
                    history.push(vec![
                        V::Uuid(Some(Uuid::now_v7())),
                        V::Uuid(Some(w.product_id)),
                        V::Text(Some(w.price_type.as_str().to_owned())),
                        V::Text(Some(currency)),
                        V::Text(old.and_then(amount_text)),
                        V::Text(amount),
                        V::Uuid(Some(job_id)),
                        V::Time(write_time),
                    ]);
                    out[*i].prices_changed += 1;
                }
            }
            for part in inserts.chunks(CHUNK) {
                exec_multi!(
                    tx,
                    multi(
                        backend,
                        "INSERT INTO product_prices (id, product_id, price_type, currency, amount, valid_from, valid_to, updated_at) VALUES ",
                        "?, ?, ?, ?, #, NULL, NULL, ?",
                        part,
                        "",
                    )
                );
            }
            for part in history.chunks(CHUNK) {
                exec_multi!(
                    tx,
                    multi(
                        backend,
                        "INSERT INTO price_history (id, product_id, price_type, currency, valid_from, old_amount, new_amount, source, import_job_id, changed_at) VALUES ",
                        "?, ?, ?, ?, NULL, #, #, 'import', ?, ?",
                        part,
                        "",
                    )
                );
            }
            // Stocks: one multi-row upsert and the history of every change.
            let stock_rows: Vec<Vec<V>> = stocks
                .iter()
                .map(|(_, w)| {
                    vec![
                        V::Uuid(Some(Uuid::now_v7())),
                        V::Uuid(Some(w.product_id)),
                        V::Text(Some(warehouse.to_owned())),
                        V::Int(Some(w.quantity)),
                        V::Time(write_time),
                    ]
                })
                .collect();
            for part in stock_rows.chunks(CHUNK) {
                exec_multi!(
                    tx,
                    multi(
                        backend,
                        "INSERT INTO product_stocks (id, product_id, warehouse, quantity, updated_at) VALUES ",
                        "?, ?, ?, ?, ?",
                        part,
                        " ON CONFLICT (product_id, warehouse) DO UPDATE SET quantity = excluded.quantity, \
                         updated_at = excluded.updated_at",
                    )
                );
            }
            let stock_history: Vec<Vec<V>> = stocks
                .iter()
                .map(|(_, w)| {
                    vec![
                        V::Uuid(Some(Uuid::now_v7())),
                        V::Uuid(Some(w.product_id)),
                        V::Text(Some(warehouse.to_owned())),
                        V::Int(w.old),
                        V::Int(Some(w.quantity)),
                        V::Uuid(Some(job_id)),
                        V::Time(write_time),
                    ]
                })
                .collect();
            for part in stock_history.chunks(CHUNK) {
                exec_multi!(
                    tx,
                    multi(
                        backend,
                        "INSERT INTO stock_history (id, product_id, warehouse, old_quantity, new_quantity, source, import_job_id, changed_at) VALUES ",
                        "?, ?, ?, ?, ?, 'import', ?, ?",
                        part,
                        "",
                    )
                );
            }
            for (i, _) in &stocks {
                out[*i].stock_changed = true;
            }

            // Offers: the last row of a supplier SKU wins.
            let mut offer_rows: HashMap<String, usize> = HashMap::new();
            for (i, row) in rows.iter().enumerate() {
                let (Some(offer), Some(_)) = (&row.offer, id_of(&out[i])) else {
                    continue;
                };
                match super::common::text("supplier_sku", &offer.supplier_sku, 128) {
                    Ok(sku) => {
                        offer_rows.insert(sku, i);
                    }
                    Err(e) => out[i].refused.push(("supplier_sku", e.to_string())),
                }
            }
            // Prices or stock of a product that was there before changed: the hashes of its
            // other offers (another supplier's, another reference of this one) no longer say
            // what is stored. This batch's own offers get their new hash below.
            let own: HashMap<usize, &str> = offer_rows.iter().map(|(k, i)| (*i, k.as_str())).collect();
            let changed: Vec<(Uuid, Option<&str>)> = out
                .iter()
                .enumerate()
                .filter(|(_, o)| o.prices_changed > 0 || o.stock_changed)
                .filter_map(|(i, o)| match o.product {
                    UpsertResult::Updated { id } | UpsertResult::Unchanged { id } => {
                        Some((id, own.get(&i).copied()))
                    }
                    _ => None,
                })
                .collect();
            for part in changed.chunks(CHUNK) {
                let skus: Vec<&str> = part.iter().filter_map(|(_, k)| *k).collect();
                let mut sql = format!(
                    "UPDATE supplier_products SET row_hash = NULL WHERE row_hash IS NOT NULL AND product_id IN {}",
                    placeholders(0, part.len())
                );
                if !skus.is_empty() {
                    sql.push_str(&format!(
                        " AND NOT (supplier_id = ${} AND supplier_sku IN {})",
                        part.len() + skus.len() + 1,
                        placeholders(part.len(), skus.len())
                    ));
                }
                let mut q = sqlx::query(&sql).persistent(false);
                for (id, _) in part {
                    q = q.bind(*id);
                }
                for k in &skus {
                    q = q.bind(*k);
                }
                if !skus.is_empty() {
                    q = q.bind(supplier_id);
                }
                q.execute(&mut *tx).await?;
            }

            let mut skus_sorted: Vec<String> = offer_rows.keys().cloned().collect();
            skus_sorted.sort();
            let mut existing_offers: HashMap<String, SupplierProduct> = HashMap::new();
            for part in skus_sorted.chunks(CHUNK) {
                let sql = format!(
                    "SELECT id, supplier_id, product_id, supplier_sku, cost_amount, cost_currency, supplier_stock, \
                     lead_time_days, last_seen_import, last_seen_at, created_at, updated_at \
                     FROM supplier_products WHERE supplier_id = $1 AND supplier_sku IN {}",
                    placeholders(1, part.len())
                );
                let mut q = sqlx::query(&sql).persistent(false).bind(supplier_id);
                for s in part {
                    q = q.bind(s.as_str());
                }
                for row in q.fetch_all(&mut *tx).await? {
                    let o = SupplierProduct::from_row(&row)?;
                    existing_offers.insert(o.supplier_sku.clone(), o);
                }
            }
            let mut writes: Vec<(usize, OfferWrite)> = Vec::new();
            let mut seen_unchanged: Vec<(usize, String, Uuid)> = Vec::new();
            for sku in &skus_sorted {
                let i = offer_rows[sku];
                let Some(product_id) = id_of(&out[i]) else {
                    continue;
                };
                let Some(offer) = rows[i].offer.as_ref() else {
                    continue;
                };
                let cost = match offer
                    .cost
                    .map(|m| non_negative_money("cost_price", m))
                    .transpose()
                {
                    Ok(c) => c,
                    Err(e) => {
                        out[i].refused.push(("cost_price", e.to_string()));
                        None
                    }
                };
                let stock = match offer.stock.map(|q| quantity("supplier_stock", q)).transpose() {
                    Ok(s) => s,
                    Err(e) => {
                        out[i].refused.push(("supplier_stock", e.to_string()));
                        None
                    }
                };
                let existing = existing_offers.remove(sku);
                let differs = match &existing {
                    None => true,
                    Some(e) => {
                        e.product_id != product_id
                            || cost.is_some_and(|c| e.cost_price != Some(c))
                            || stock.is_some_and(|s| e.supplier_stock != Some(s))
                    }
                };
                if differs {
                    writes.push((
                        i,
                        OfferWrite {
                            product_id,
                            sku: sku.clone(),
                            cost,
                            stock,
                            existing,
                        },
                    ));
                } else {
                    seen_unchanged.push((i, sku.clone(), product_id));
                }
            }
            // What the offer keeps of the row: its hash and the product's version, unless a
            // value of the row was refused (it is written, and refused, again next time).
            let stamp = |out: &[ImportOutcome], i: usize, product_id: Uuid| -> (Option<i64>, Option<i64>) {
                match (hashes[i], version_of.get(&product_id)) {
                    (Some(h), Some(v)) if out[i].refused.is_empty() => (Some(h), Some(*v)),
                    _ => (None, None),
                }
            };
            let offer_values: Vec<Vec<V>> = writes
                .iter()
                .map(|(i, w)| {
                    let (hash, version) = stamp(&out, *i, w.product_id);
                    vec![
                        V::Uuid(Some(Uuid::now_v7())),
                        V::Uuid(Some(supplier_id)),
                        V::Uuid(Some(w.product_id)),
                        V::Text(Some(w.sku.clone())),
                        V::Text(w.cost.and_then(|c| amount_text(c.amount()))),
                        V::Text(w.cost.map(|c| c.currency().as_str().to_owned())),
                        V::Int(w.stock),
                        V::Uuid(Some(job_id)),
                        V::Time(write_time),
                        V::Time(write_time),
                        V::Time(write_time),
                        V::Int(hash),
                        V::Int(version),
                    ]
                })
                .collect();
            for part in offer_values.chunks(CHUNK) {
                exec_multi!(
                    tx,
                    multi(
                        backend,
                        "INSERT INTO supplier_products (id, supplier_id, product_id, supplier_sku, cost_amount, \
                         cost_currency, supplier_stock, lead_time_days, last_seen_import, last_seen_at, created_at, updated_at, \
                         row_hash, row_version) VALUES ",
                        "?, ?, ?, ?, #, ?, ?, NULL, ?, ?, ?, ?, ?, ?",
                        part,
                        " ON CONFLICT (supplier_id, supplier_sku) DO UPDATE SET \
                         product_id = excluded.product_id, \
                         cost_amount = COALESCE(excluded.cost_amount, supplier_products.cost_amount), \
                         cost_currency = COALESCE(excluded.cost_currency, supplier_products.cost_currency), \
                         supplier_stock = COALESCE(excluded.supplier_stock, supplier_products.supplier_stock), \
                         last_seen_import = excluded.last_seen_import, \
                         last_seen_at = excluded.last_seen_at, \
                         updated_at = excluded.updated_at, \
                         row_hash = excluded.row_hash, \
                         row_version = excluded.row_version",
                    )
                );
            }
            let journal: Vec<Vec<V>> = writes
                .iter()
                .map(|(_, w)| {
                    vec![
                        V::Uuid(Some(job_id)),
                        V::Uuid(Some(supplier_id)),
                        V::Text(Some(w.sku.clone())),
                        V::Bool(w.existing.is_none()),
                        V::Text(w.existing.as_ref().and_then(|e| serde_json::to_string(e).ok())),
                        V::Time(write_time),
                    ]
                })
                .collect();
            let before_col = if backend == Backend::Postgres {
                "CAST(? AS JSONB)"
            } else {
                "?"
            };
            for part in journal.chunks(CHUNK) {
                exec_multi!(
                    tx,
                    multi(
                        backend,
                        "INSERT INTO import_offer_changes (job_id, supplier_id, supplier_sku, created, before, changed_at) VALUES ",
                        &format!("?, ?, ?, ?, {before_col}, ?"),
                        part,
                        " ON CONFLICT (job_id, supplier_id, supplier_sku) DO NOTHING",
                    )
                );
            }
            for (i, _) in &writes {
                out[*i].offer_changed = true;
            }
            // Listed by this job (what a full import's missing products are told apart by),
            // with the row's hash: one statement over a list of values per chunk.
            let seen: Vec<Vec<V>> = seen_unchanged
                .iter()
                .map(|(i, sku, product_id)| {
                    let (hash, version) = stamp(&out, *i, *product_id);
                    vec![V::Text(Some(sku.clone())), V::Int(hash), V::Int(version)]
                })
                .collect();
            for part in seen.chunks(CHUNK) {
                let mut m = multi(
                    backend,
                    "WITH v (sku, row_hash, row_version) AS (VALUES ",
                    "CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT)",
                    part,
                    "",
                );
                let n = m.args.len();
                m.sql.push_str(&format!(
                    ") UPDATE supplier_products SET last_seen_import = ${}, last_seen_at = ${}, \
                     row_hash = v.row_hash, row_version = v.row_version FROM v \
                     WHERE supplier_products.supplier_id = ${} AND supplier_products.supplier_sku = v.sku",
                    n + 1,
                    n + 2,
                    n + 3
                ));
                m.args.extend([
                    V::Uuid(Some(job_id)),
                    V::Time(write_time),
                    V::Uuid(Some(supplier_id)),
                ]);
                exec_multi!(tx, m);
            }
            tx.commit().await?;
            Ok(out)
        })
    }
}

/// One value's change by a job, as its history rows tell it: the value before the job's first
/// change and after its last.
struct Undo<K, T> {
    key: K,
    old: Option<T>,
    new: Option<T>,
}

/// History rows `(key, old, new)` in the order they were written, folded per key.
fn undo_list<K: Eq + std::hash::Hash + Clone, T>(
    rows: impl IntoIterator<Item = (K, Option<T>, Option<T>)>,
) -> Vec<Undo<K, T>> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<Undo<K, T>> = Vec::new();
    for (key, old, new) in rows {
        match index.get(&key) {
            Some(&i) => out[i].new = new,
            None => {
                index.insert(key.clone(), out.len());
                out.push(Undo { key, old, new });
            }
        }
    }
    out
}

impl Catalog {
    /// Undoes what import job `job_id` did, in one transaction: prices and stocks back to their
    /// values before it (from their history), products it updated back to what they were,
    /// products it created to the trash, offers back or removed. A value someone changed since
    /// (a person, a later import) is kept and counted in `kept_changed_since`. The undo writes
    /// history rows like any change, attributed to the job.
    pub async fn rollback_import(&self, job_id: Uuid) -> Result<RollbackReport, StoreError> {
        let backend = self.db.backend();
        let numeric = |p: &str| {
            if backend == Backend::Postgres {
                format!("CAST({p} AS NUMERIC)")
            } else {
                p.to_owned()
            }
        };
        let t = now();
        let mut report = RollbackReport::default();
        let mut ids: HashSet<Uuid> = HashSet::new();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_locked(SKU_LOCK).await?;

            // Prices.
            let rows = sqlx::query(
                "SELECT product_id, price_type, currency, old_amount, new_amount FROM price_history \
                 WHERE import_job_id = $1 AND valid_from IS NULL ORDER BY changed_at, id",
            )
            .bind(job_id)
            .fetch_all(&mut *tx)
            .await?;
            let mut changes = Vec::with_capacity(rows.len());
            for r in &rows {
                let key: (Uuid, String, String) =
                    (r.col("product_id")?, r.col("price_type")?, r.col("currency")?);
                changes.push((
                    key,
                    r.col::<Option<Amount>>("old_amount")?,
                    r.col::<Option<Amount>>("new_amount")?,
                ));
            }
            for u in undo_list(changes) {
                let (product_id, kind, currency) = &u.key;
                let current = sqlx::query(
                    "SELECT id, amount FROM product_prices WHERE product_id = $1 AND price_type = $2 \
                     AND currency = $3 AND valid_from IS NULL",
                )
                .bind(*product_id)
                .bind(kind.as_str())
                .bind(currency.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let current: Option<(Uuid, Amount)> = match &current {
                    Some(r) => Some((r.col("id")?, r.col("amount")?)),
                    None => None,
                };
                if current.map(|c| c.1) != u.new {
                    report.kept_changed_since += 1;
                    continue;
                }
                match (current, u.old) {
                    (Some((id, _)), None) => {
                        sqlx::query("DELETE FROM product_prices WHERE id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    (Some((id, _)), Some(old)) => {
                        let sql = format!(
                            "UPDATE product_prices SET amount = {}, updated_at = $3 WHERE id = $1",
                            numeric("$2")
                        );
                        sqlx::query(&sql)
                            .bind(id)
                            .bind(amount_text(old))
                            .bind(t)
                            .execute(&mut *tx)
                            .await?;
                    }
                    (None, Some(old)) => {
                        let sql = format!(
                            "INSERT INTO product_prices (id, product_id, price_type, currency, amount, \
                             valid_from, valid_to, updated_at) VALUES ($1, $2, $3, $4, {}, NULL, NULL, $6)",
                            numeric("$5")
                        );
                        sqlx::query(&sql)
                            .bind(Uuid::now_v7())
                            .bind(*product_id)
                            .bind(kind.as_str())
                            .bind(currency.as_str())
                            .bind(amount_text(old))
                            .bind(t)
                            .execute(&mut *tx)
                            .await?;
                    }
                    (None, None) => continue,
                }
                let sql = format!(
                    "INSERT INTO price_history (id, product_id, price_type, currency, valid_from, old_amount, \
                     new_amount, source, import_job_id, changed_at) VALUES ($1, $2, $3, $4, NULL, {}, {}, 'import', $7, $8)",
                    numeric("$5"),
                    numeric("$6")
                );
                sqlx::query(&sql)
                    .bind(Uuid::now_v7())
                    .bind(*product_id)
                    .bind(kind.as_str())
                    .bind(currency.as_str())
                    .bind(u.new.and_then(amount_text))
                    .bind(u.old.and_then(amount_text))
                    .bind(job_id)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
                report.prices_restored += 1;
                ids.insert(*product_id);
            }

            // Stocks.
            let rows = sqlx::query(
                "SELECT product_id, warehouse, old_quantity, new_quantity FROM stock_history \
                 WHERE import_job_id = $1 ORDER BY changed_at, id",
            )
            .bind(job_id)
            .fetch_all(&mut *tx)
            .await?;
            let mut changes = Vec::with_capacity(rows.len());
            for r in &rows {
                let key: (Uuid, String) = (r.col("product_id")?, r.col("warehouse")?);
                let old: Option<i64> = r.col("old_quantity")?;
                let new: Option<i64> = r.col("new_quantity")?;
                changes.push((key, old, new));
            }
            for u in undo_list(changes) {
                let (old, new) = (u.old, u.new);
                let (product_id, warehouse) = &u.key;
                let current: Option<i64> = sqlx::query_scalar(
                    "SELECT quantity FROM product_stocks WHERE product_id = $1 AND warehouse = $2",
                )
                .bind(*product_id)
                .bind(warehouse.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                if current != new {
                    report.kept_changed_since += 1;
                    continue;
                }
                match old {
                    None => {
                        sqlx::query("DELETE FROM product_stocks WHERE product_id = $1 AND warehouse = $2")
                            .bind(*product_id)
                            .bind(warehouse.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                    Some(q) => {
                        sqlx::query(
                            "INSERT INTO product_stocks (id, product_id, warehouse, quantity, updated_at) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (product_id, warehouse) DO UPDATE \
                             SET quantity = excluded.quantity, updated_at = excluded.updated_at",
                        )
                        .bind(Uuid::now_v7())
                        .bind(*product_id)
                        .bind(warehouse.as_str())
                        .bind(q)
                        .bind(t)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                sqlx::query(
                    "INSERT INTO stock_history (id, product_id, warehouse, old_quantity, new_quantity, source, \
                     import_job_id, changed_at) VALUES ($1, $2, $3, $4, $5, 'import', $6, $7)",
                )
                .bind(Uuid::now_v7())
                .bind(*product_id)
                .bind(warehouse.as_str())
                .bind(new)
                .bind(old)
                .bind(job_id)
                .bind(t)
                .execute(&mut *tx)
                .await?;
                report.stocks_restored += 1;
                ids.insert(*product_id);
            }

            // Offers: back to what they were (or removed) while nobody wrote them since.
            let rows = sqlx::query(
                "SELECT supplier_id, supplier_sku, created, CAST(before AS TEXT) AS before, changed_at \
                 FROM import_offer_changes WHERE job_id = $1",
            )
            .bind(job_id)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let supplier_id: Uuid = r.col("supplier_id")?;
                let sku: String = r.col("supplier_sku")?;
                let created: bool = r.col("created")?;
                let before: Option<String> = r.col("before")?;
                let changed_at: DateTime<Utc> = r.col("changed_at")?;
                let before: Option<SupplierProduct> = match before {
                    Some(b) => {
                        Some(serde_json::from_str(&b).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                    }
                    None => None,
                };
                let done = match (created, before) {
                    (true, _) => sqlx::query(
                        "DELETE FROM supplier_products WHERE supplier_id = $1 AND supplier_sku = $2 AND updated_at = $3",
                    )
                    .bind(supplier_id)
                    .bind(sku.as_str())
                    .bind(changed_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                    (false, Some(b)) => {
                        let sql = format!(
                            "UPDATE supplier_products SET product_id = $3, cost_amount = {}, cost_currency = $5, \
                             supplier_stock = $6, last_seen_import = $7, last_seen_at = $8, updated_at = $9, \
                             row_hash = NULL WHERE supplier_id = $1 AND supplier_sku = $2 AND updated_at = $10",
                            numeric("$4")
                        );
                        sqlx::query(&sql)
                            .bind(supplier_id)
                            .bind(sku.as_str())
                            .bind(b.product_id)
                            .bind(b.cost_price.and_then(|c| amount_text(c.amount())))
                            .bind(b.cost_price.map(|c| c.currency().as_str().to_owned()))
                            .bind(b.supplier_stock)
                            .bind(b.last_seen_import)
                            .bind(b.last_seen_at)
                            // As it was: an earlier job's rollback then finds it as that job
                            // left it.
                            .bind(b.updated_at)
                            .bind(changed_at)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected()
                    }
                    (false, None) => 0,
                };
                if done > 0 {
                    report.offers_restored += 1;
                } else {
                    report.kept_changed_since += 1;
                }
            }

            // Products: while still at the version the job left them.
            let rows = sqlx::query(
                "SELECT product_id, created, CAST(before AS TEXT) AS before, version_after \
                 FROM import_product_changes WHERE job_id = $1",
            )
            .bind(job_id)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                let id: Uuid = r.col("product_id")?;
                let created: bool = r.col("created")?;
                let before: Option<String> = r.col("before")?;
                let version: i64 = r.col("version_after")?;
                let done = if created {
                    sqlx::query(
                        "UPDATE products SET deleted_at = $2, updated_at = $2, version = version + 1 \
                         WHERE id = $1 AND version = $3 AND deleted_at IS NULL",
                    )
                    .bind(id)
                    .bind(t)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                } else if let Some(b) = before {
                    let p: Product =
                        serde_json::from_str(&b).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    let n = sqlx::query(
                        "UPDATE products SET ean = $3, sku = $4, asin = $5, title = $6, title_key = $7, \
                         description = $8, brand = $9, brand_id = $10, primary_category_id = $11, status = $12, \
                         weight_grams = $13, length_mm = $14, width_mm = $15, height_mm = $16, attributes = $17, \
                         updated_at = $18, version = version + 1 WHERE id = $1 AND version = $2 AND deleted_at IS NULL",
                    )
                    .bind(id)
                    .bind(version)
                    .bind(p.ean.as_ref().map(pm_domain::Gtin::as_str))
                    .bind(p.sku.as_deref())
                    .bind(p.asin.as_ref().map(pm_domain::Asin::as_str))
                    .bind(&p.title)
                    .bind(pm_domain::text::sort_key(&p.title))
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
                    .bind(t)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n > 0 {
                        // The product is as the job before this one left it: that job's
                        // journal now names the new version, so its own rollback still applies.
                        sqlx::query(
                            "UPDATE import_product_changes SET version_after = $1 \
                             WHERE product_id = $2 AND version_after = $3 AND job_id <> $4",
                        )
                        .bind(version + 1)
                        .bind(id)
                        .bind(p.version)
                        .bind(job_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    n
                } else {
                    0
                };
                if done > 0 {
                    if created {
                        report.products_removed += 1;
                    } else {
                        report.products_restored += 1;
                    }
                    ids.insert(id);
                } else {
                    report.kept_changed_since += 1;
                }
            }
            // The offers of every product whose values went back: their hashes say what the
            // job wrote, so a re-import of its file writes again.
            let restored: Vec<Uuid> = ids.iter().copied().collect();
            clear_row_hashes!(tx, &restored);
            tx.commit().await?;
        });
        report.product_ids = ids.into_iter().collect();
        Ok(report)
    }

    /// A full import's end: the supplier's offers that job `job_id` did not list get supplier
    /// stock 0, and so do their products' stocks in `warehouse` (with history): never deleted.
    /// Journaled like the job's other changes, so a rollback undoes this too.
    pub async fn mark_missing(
        &self,
        job_id: Uuid,
        supplier_id: Uuid,
        warehouse: &str,
    ) -> Result<MissingReport, StoreError> {
        let warehouse = super::common::code("warehouse", warehouse, 64)?;
        let t = now();
        let backend = self.db.backend();
        let mut report = MissingReport::default();
        with_conn!(self.db, |conn| {
            let mut tx = conn.begin_write().await?;
            let rows = sqlx::query(
                "SELECT id, supplier_id, product_id, supplier_sku, cost_amount, cost_currency, supplier_stock, \
                 lead_time_days, last_seen_import, last_seen_at, created_at, updated_at FROM supplier_products \
                 WHERE supplier_id = $1 AND (last_seen_import IS NULL OR last_seen_import <> $2) \
                 AND (supplier_stock IS NULL OR supplier_stock <> 0)",
            )
            .bind(supplier_id)
            .bind(job_id)
            .fetch_all(&mut *tx)
            .await?;
            let offers: Vec<SupplierProduct> = rows
                .iter()
                .map(SupplierProduct::from_row)
                .collect::<Result<_, _>>()?;
            let before_col = if backend == Backend::Postgres {
                "CAST(? AS JSONB)"
            } else {
                "?"
            };
            for part in offers.chunks(CHUNK) {
                let journal: Vec<Vec<V>> = part
                    .iter()
                    .map(|o| {
                        vec![
                            V::Uuid(Some(job_id)),
                            V::Uuid(Some(supplier_id)),
                            V::Text(Some(o.supplier_sku.clone())),
                            V::Bool(false),
                            V::Text(serde_json::to_string(o).ok()),
                            V::Time(t),
                        ]
                    })
                    .collect();
                exec_multi!(
                    tx,
                    multi(
                        backend,
                        "INSERT INTO import_offer_changes (job_id, supplier_id, supplier_sku, created, before, changed_at) VALUES ",
                        &format!("?, ?, ?, ?, {before_col}, ?"),
                        &journal,
                        " ON CONFLICT (job_id, supplier_id, supplier_sku) DO NOTHING",
                    )
                );
                let sql = format!(
                    "UPDATE supplier_products SET supplier_stock = 0, updated_at = $1, row_hash = NULL WHERE id IN {}",
                    placeholders(1, part.len())
                );
                let mut q = sqlx::query(&sql).persistent(false).bind(t);
                for o in part {
                    q = q.bind(o.id);
                }
                report.offers += q.execute(&mut *tx).await?.rows_affected();
                // The products' stock in the supplier's warehouse, where not 0 already.
                let sql = format!(
                    "SELECT product_id, quantity FROM product_stocks WHERE warehouse = $1 AND quantity <> 0 \
                     AND product_id IN {}",
                    placeholders(1, part.len())
                );
                let mut q = sqlx::query_as::<_, (Uuid, i64)>(&sql)
                    .persistent(false)
                    .bind(&warehouse);
                for o in part {
                    q = q.bind(o.product_id);
                }
                let stocks = q.fetch_all(&mut *tx).await?;
                for (product_id, old) in stocks {
                    sqlx::query("UPDATE product_stocks SET quantity = 0, updated_at = $3 WHERE product_id = $1 AND warehouse = $2")
                        .bind(product_id)
                        .bind(&warehouse)
                        .bind(t)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO stock_history (id, product_id, warehouse, old_quantity, new_quantity, source, \
                         import_job_id, changed_at) VALUES ($1, $2, $3, $4, 0, 'import', $5, $6)",
                    )
                    .bind(Uuid::now_v7())
                    .bind(product_id)
                    .bind(&warehouse)
                    .bind(old)
                    .bind(job_id)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
                    report.stocks += 1;
                    report.product_ids.push(product_id);
                }
            }
            // Stocks set to 0: the hashes of the products' other offers (listed by the file)
            // no longer say what is stored.
            clear_row_hashes!(tx, &report.product_ids);
            tx.commit().await?;
        });
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use pm_domain::{Currency, Gtin};

    use super::*;

    #[test]
    fn postgres_inserts_bind_one_array_per_column_and_others_keep_their_values_list() {
        let id = Uuid::nil();
        let rows = vec![
            vec![
                V::Uuid(Some(id)),
                V::Text(Some("1.50".into())),
                V::Text(None),
                V::Int(Some(3)),
            ],
            vec![
                V::Uuid(None),
                V::Text(None),
                V::Text(Some("{}".into())),
                V::Int(None),
            ],
        ];
        let head = "INSERT INTO t (a, b, c, d, e) VALUES ";
        let m = multi(
            Backend::Postgres,
            head,
            "?, #, CAST(? AS JSONB), 'import', ?",
            &rows,
            " ON CONFLICT DO NOTHING",
        );
        assert_eq!(
            m.sql,
            "INSERT INTO t (a, b, c, d, e) SELECT u.c1, CAST(u.c2 AS NUMERIC), CAST(u.c3 AS JSONB), 'import', u.c4 \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[]) AS u (c1, c2, c3, c4) ON CONFLICT DO NOTHING"
        );
        assert!(m.persistent);
        assert!(
            matches!(&m.args[..], [V::Col(Col::Uuid(a)), V::Col(Col::Text(_)), V::Col(Col::Text(_)), V::Col(Col::Int(d))]
            if a == &vec![Some(id), None] && d == &vec![Some(3), None])
        );
        // The same on SQLite, and a statement that is not an insert: a list of values.
        let m = multi(
            Backend::Sqlite,
            head,
            "?, #, CAST(? AS JSONB), 'import', ?",
            &rows,
            "",
        );
        assert!(
            m.sql
                .contains("VALUES ($1, $2, CAST($3 AS JSONB), 'import', $4), ($5"),
            "{}",
            m.sql
        );
        assert!(!m.persistent);
        let m = multi(
            Backend::Postgres,
            "WITH v (k) AS (VALUES ",
            "CAST(? AS TEXT)",
            &[vec![V::Text(None)]],
            ")",
        );
        assert!(
            m.sql.starts_with("WITH v (k) AS (VALUES (CAST($1 AS TEXT)))"),
            "{}",
            m.sql
        );
        // Mixed types in a column: the values list.
        let mixed = vec![vec![V::Int(Some(1))], vec![V::Text(None)]];
        assert!(
            multi(Backend::Postgres, "INSERT INTO t (a) VALUES ", "?", &mixed, "")
                .sql
                .contains("VALUES ($1), ($2)")
        );
    }
    use crate::catalog::common::testing::open;
    use crate::catalog::products::ProductPatch;
    use crate::catalog::suppliers::NewSupplier;
    use crate::catalog::{ChangeSource, NewPrice};
    use crate::testing::backends;

    const EANS: [&str; 3] = ["4006381333931", "0887276302195", "5901234123457"];

    fn row(ean: &str, title: &str, cost: &str, stock: i64) -> ImportRow {
        let cost = Money::parse(cost, "EUR").unwrap();
        ImportRow {
            product: NewProduct {
                ean: Some(Gtin::parse(ean).unwrap()),
                title: title.into(),
                ..Default::default()
            },
            prices: vec![(PriceType::Cost, cost)],
            stock: Some(stock),
            offer: Some(ImportOffer {
                supplier_sku: format!("REF-{ean}"),
                cost: Some(cost),
                stock: Some(stock),
            }),
        }
    }

    fn file() -> Vec<ImportRow> {
        vec![
            row(EANS[0], "Stylo", "1.10", 5),
            row(EANS[1], "Câble", "2.50", 7),
            row(EANS[2], "Agrafeuse", "9.00", 9),
        ]
    }

    /// `c` created, `u` updated, `=` unchanged, `!` failed; `p` a price, `s` the stock, `o`
    /// the offer written.
    fn summary(out: &[ImportOutcome]) -> Vec<String> {
        out.iter()
            .map(|o| {
                let mut s = match o.product {
                    UpsertResult::Created { .. } => "c",
                    UpsertResult::Updated { .. } => "u",
                    UpsertResult::Unchanged { .. } => "=",
                    UpsertResult::Failed { .. } => "!",
                }
                .to_owned();
                s.push_str(&"p".repeat(o.prices_changed as usize));
                if o.stock_changed {
                    s.push('s');
                }
                if o.offer_changed {
                    s.push('o');
                }
                s
            })
            .collect()
    }

    fn id(o: &ImportOutcome) -> Uuid {
        match o.product {
            UpsertResult::Created { id } | UpsertResult::Updated { id } | UpsertResult::Unchanged { id } => {
                id
            }
            UpsertResult::Failed { .. } => panic!("{o:?}"),
        }
    }

    #[test]
    fn a_row_hash_is_stable_and_covers_what_the_row_writes() {
        let base = row(EANS[0], "Stylo", "1.10", 5);
        let h = row_hash("acme", &base);
        assert_eq!(h, row_hash("acme", &base.clone()));
        // Pinned: a change of the encoding must come with a new ROW_HASH_TAG.
        assert_eq!(h, PINNED_HASH, "{h}");
        assert_ne!(h, row_hash("other", &base), "the warehouse");
        let mut r = base.clone();
        r.product.title = "STYLO".into();
        assert_ne!(h, row_hash("acme", &r), "the title");
        let mut r = base.clone();
        r.prices[0].1 = Money::parse("1.20", "EUR").unwrap();
        assert_ne!(h, row_hash("acme", &r), "a price");
        let mut r = base.clone();
        r.offer.as_mut().unwrap().stock = None;
        assert_ne!(h, row_hash("acme", &r), "the offer's stock");
        let mut r = base.clone();
        r.product.attributes.insert("colour".into(), "red".into());
        assert_ne!(h, row_hash("acme", &r), "an attribute");
        // Values do not run into each other.
        let (mut a, mut b) = (base.clone(), base);
        a.product.description = Some("ab".into());
        a.product.brand = Some("c".into());
        b.product.description = Some("a".into());
        b.product.brand = Some("bc".into());
        assert_ne!(row_hash("acme", &a), row_hash("acme", &b));
    }

    const PINNED_HASH: i64 = 143_891_981_446_711_972;

    #[tokio::test]
    async fn an_unchanged_row_writes_nothing_until_something_else_wrote_its_values() {
        for env in backends() {
            let (dbs, cat) = open(&env).await;
            let l = env.label;
            let supplier = cat
                .create_supplier(NewSupplier {
                    code: "acme".into(),
                    name: "Acme".into(),
                    contact: None,
                    default_currency: Currency::parse("EUR").unwrap(),
                    active: true,
                })
                .await
                .unwrap()
                .id;
            let run = |rows: Vec<ImportRow>, full: bool| {
                let cat = cat.clone();
                async move {
                    let job_id = Uuid::now_v7();
                    let out = cat
                        .import_batch(ImportBatch {
                            job_id,
                            supplier_id: supplier,
                            warehouse: "acme".into(),
                            rows,
                            full,
                        })
                        .await
                        .unwrap();
                    (job_id, out)
                }
            };
            let seen_by = |product: Uuid| {
                let cat = cat.clone();
                async move { cat.supplier_offers(product).await.unwrap()[0].last_seen_import }
            };
            let (first, out) = run(file(), false).await;
            assert_eq!(summary(&out), ["cpso", "cpso", "cpso"], "{l}");
            let ids: Vec<Uuid> = out.iter().map(id).collect();

            // The same rows: unchanged, and nothing written (a delta import does not even
            // move the offers' last-seen import).
            let (_, out) = run(file(), false).await;
            assert_eq!(summary(&out), ["=", "=", "="], "{l}");
            assert_eq!(out.iter().map(id).collect::<Vec<_>>(), ids, "{l}");
            assert_eq!(seen_by(ids[0]).await, Some(first), "{l}");
            // A full import marks them listed.
            let (full, out) = run(file(), true).await;
            assert_eq!(summary(&out), ["=", "=", "="], "{l}");
            assert_eq!(seen_by(ids[2]).await, Some(full), "{l}");

            // A changed cost in one row: that row alone, with its history.
            let mut rows = file();
            rows[1] = row(EANS[1], "Câble", "2.60", 7);
            let (changed, out) = run(rows, false).await;
            assert_eq!(summary(&out), ["=", "=po", "="], "{l}");
            let hour = chrono::Duration::hours(1);
            let history = cat
                .price_history(ids[1], Utc::now() - hour, Utc::now() + hour, 10, None, true)
                .await
                .unwrap();
            assert!(
                history
                    .items
                    .iter()
                    .any(|h| matches!(h.source, ChangeSource::Import { job_id } if job_id == changed)),
                "{l}: {history:?}"
            );
            // The file as it was: the row goes back.
            let (_, out) = run(file(), false).await;
            assert_eq!(summary(&out), ["=", "=po", "="], "{l}");

            // Values written by someone else: the price of the first, the title of the
            // second, the third deleted. Each row is written again.
            let cost = NewPrice {
                price_type: PriceType::Cost,
                price: Money::parse("3.00", "EUR").unwrap(),
                valid_from: None,
                valid_to: None,
            };
            cat.set_price(ids[0], cost, ChangeSource::Api).await.unwrap();
            let patch = ProductPatch {
                title: Some("Câble USB".into()),
                ..Default::default()
            };
            cat.update_product(ids[1], patch, None).await.unwrap();
            cat.delete_product(ids[2], None).await.unwrap();
            let (again, out) = run(file(), false).await;
            assert_eq!(summary(&out), ["=p", "u", "cpso"], "{l}");
            assert_eq!(cat.get_product(ids[1]).await.unwrap().title, "Câble", "{l}");
            let (_, out) = run(file(), false).await;
            assert_eq!(summary(&out), ["=", "=", "="], "{l}");

            // Rolled back, the job's rows are written again by the same file.
            cat.rollback_import(again).await.unwrap();
            let (_, out) = run(file(), false).await;
            assert_eq!(summary(&out), ["=p", "u", "cpso"], "{l}");
            let (_, out) = run(file(), false).await;
            assert_eq!(summary(&out), ["=", "=", "="], "{l}");

            // A supplier SKU twice in a batch is written (the last row's offer wins).
            let mut rows = file();
            rows.push(rows[0].clone());
            let (_, out) = run(rows, false).await;
            assert_eq!(&summary(&out)[1..3], ["=", "="], "{l}");
            dbs.close().await;
            env.cleanup().await;
        }
    }
}
