//! What the catalog modules share: typed column reads on either backend, amounts as bind
//! values, keyset pages, input checks, error mapping, serialised writes, change sources.

use chrono::{DateTime, SubsecRound, Utc};
use pm_domain::{Amount, Currency, Decimal, Money, TextKind};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, Row, Sqlite, ValueRef};
use uuid::Uuid;

use super::{Catalog, Page};
use crate::{with_conn, StoreError};

/// The text of a statement for `backend`. On SQLite, parameters written `$1, $2, …, $n`, each
/// once and in that order, become anonymous `?`: SQLite finds a named or numbered parameter by
/// a linear search, when it prepares the statement and again when sqlx asks each parameter's
/// name to bind it, which over a multi-row statement of thousands of values is quadratic (it
/// was most of a bulk import's CPU on SQLite). Anonymous ones are numbered by position for
/// free. A statement that reuses or reorders a number is left as it is (sqlx cannot mix the
/// two forms either); so is every statement on PostgreSQL.
pub(crate) fn positional(backend: crate::Backend, sql: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if backend != crate::Backend::Sqlite {
        return Cow::Borrowed(sql);
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut next, mut last, mut i) = (1usize, 0usize, 0usize);
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let start = i + 1;
            let mut end = start;
            while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if sql[start..end].parse::<usize>().ok() != Some(next) {
                return Cow::Borrowed(sql);
            }
            out.push_str(&sql[last..i]);
            out.push('?');
            next += 1;
            last = end;
            i = end;
        } else {
            i += 1;
        }
    }
    if next == 1 {
        return Cow::Borrowed(sql);
    }
    out.push_str(&sql[last..]);
    Cow::Owned(out)
}

/// Now, to the microsecond: PostgreSQL keeps microseconds, so a value written and read back
/// compares equal on both backends.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Who changed a price or a stock: the API, or an import job (its id in the imports database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChangeSource {
    Api,
    Import { job_id: Uuid },
}

impl ChangeSource {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Import { .. } => "import",
        }
    }

    pub(crate) fn job_id(&self) -> Option<Uuid> {
        match self {
            Self::Api => None,
            Self::Import { job_id } => Some(*job_id),
        }
    }

    pub(crate) fn from_columns(kind: &str, job_id: Option<Uuid>) -> Result<Self, StoreError> {
        match (kind, job_id) {
            ("api", _) => Ok(Self::Api),
            ("import", Some(job_id)) => Ok(Self::Import { job_id }),
            _ => Err(StoreError::Corrupt(format!(
                "change source {kind:?} without a job id"
            ))),
        }
    }
}

/// The result of a write that may change nothing: `changed` is false when the stored value
/// was already the one asked for (and no history row was written).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Changed<T> {
    #[serde(flatten)]
    pub value: T,
    pub changed: bool,
}

// ---- reading columns -------------------------------------------------------------------

/// A value read from a named column of a SQLite or PostgreSQL row. One trait bound
/// ([`RowExt`]) instead of a `Decode + Type` bound per column type on every mapping function.
pub(crate) trait Col: Sized {
    fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, StoreError>;
    fn pg(row: &PgRow, name: &str) -> Result<Self, StoreError>;
}

macro_rules! plain_col {
    ($($t:ty),*) => {$(
        impl Col for $t {
            fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, StoreError> {
                Ok(row.try_get(name)?)
            }
            fn pg(row: &PgRow, name: &str) -> Result<Self, StoreError> {
                Ok(row.try_get(name)?)
            }
        }
    )*};
}

plain_col!(Uuid, String, i64, i32, bool, DateTime<Utc>);

/// NULL is `None`; anything else is read as `T`.
impl<T: Col> Col for Option<T> {
    fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, StoreError> {
        if row.try_get_raw(name)?.is_null() {
            return Ok(None);
        }
        T::sqlite(row, name).map(Some)
    }
    fn pg(row: &PgRow, name: &str) -> Result<Self, StoreError> {
        if row.try_get_raw(name)?.is_null() {
            return Ok(None);
        }
        T::pg(row, name).map(Some)
    }
}

impl Col for Currency {
    fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, StoreError> {
        parse_currency(String::sqlite(row, name)?)
    }
    fn pg(row: &PgRow, name: &str) -> Result<Self, StoreError> {
        parse_currency(String::pg(row, name)?)
    }
}

fn parse_currency(s: String) -> Result<Currency, StoreError> {
    Currency::parse(&s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// SQLite keeps amounts as decimal strings, PostgreSQL as `NUMERIC(19,4)`.
impl Col for Amount {
    fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, StoreError> {
        let s: String = row.try_get(name)?;
        Amount::parse(&s).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
    fn pg(row: &PgRow, name: &str) -> Result<Self, StoreError> {
        let d: Decimal = row.try_get(name)?;
        Amount::new(d).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// Rows of either backend.
pub(crate) trait RowExt {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError>;

    /// An amount column and a currency column as one [`Money`].
    fn money(&self, amount: &str, currency: &str) -> Result<Option<Money>, StoreError> {
        let amount: Option<Amount> = self.col(amount)?;
        let currency: Option<Currency> = self.col(currency)?;
        Ok(amount.zip(currency).map(|(a, c)| Money::new(a, c)))
    }
}

impl RowExt for SqliteRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        T::sqlite(self, name)
    }
}

impl RowExt for PgRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        T::pg(self, name)
    }
}

// ---- binding amounts -------------------------------------------------------------------

/// An amount as a bind value: a decimal string on SQLite, `NUMERIC` on PostgreSQL, so one
/// query text serves both and no float is ever involved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DbAmount(pub Decimal);

impl From<Amount> for DbAmount {
    fn from(a: Amount) -> Self {
        Self(a.decimal())
    }
}

impl sqlx::Type<Sqlite> for DbAmount {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<Sqlite>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, Sqlite> for DbAmount {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<'q, Sqlite>>::encode(self.0.to_string(), buf)
    }
}

impl sqlx::Type<Postgres> for DbAmount {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Decimal as sqlx::Type<Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, Postgres> for DbAmount {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <Decimal as sqlx::Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

// ---- serialised writes -----------------------------------------------------------------

pub(crate) use crate::db::BeginLocked;

// ---- keyset pages (shared with the core database: crate::keyset) ---------------------

pub(crate) use crate::keyset::{after, fetch_limit, page};

// ---- checking input --------------------------------------------------------------------

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A name-like text: trimmed, not empty, at most `max` characters, no control characters.
/// Returns the trimmed text.
pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<String, StoreError> {
    text_ref(field, value, max).map(str::to_owned)
}

/// [`text`], borrowed from `value` (for a check per row that keeps nothing).
pub(crate) fn text_ref<'a>(field: &'static str, value: &'a str, max: usize) -> Result<&'a str, StoreError> {
    let v = value.trim();
    pm_domain::text::check_required(v, TextKind::Line, max).map_err(|e| invalid(field, e.to_string()))?;
    Ok(v)
}

/// [`text`] for an optional value; empty counts as absent.
pub(crate) fn opt_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, StoreError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}

/// A code or key: 1 to `max` ASCII letters, digits, `-`, `_` or `.` (no spaces, no `/`), as
/// typed in import profiles and URLs.
pub(crate) fn code(field: &'static str, value: &str, max: usize) -> Result<String, StoreError> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if value.is_empty() || value.len() > max || !value.bytes().all(ok) {
        return Err(invalid(
            field,
            format!("must be 1 to {max} letters, digits, '-', '_' or '.', found {value:?}"),
        ));
    }
    Ok(value.to_owned())
}

/// A URL slug: lower-case ASCII letters and digits in words joined by single hyphens.
pub(crate) fn slug(field: &'static str, value: &str) -> Result<String, StoreError> {
    let words_ok = value
        .split('-')
        .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if value.is_empty() || value.len() > MAX_SLUG || !words_ok {
        return Err(invalid(
            field,
            format!("must be lower-case letters and digits joined by single hyphens (at most 120), found {value:?}"),
        ));
    }
    Ok(value.to_owned())
}

/// The slug a name gives when none is given ([`pm_domain::text::slugify`]); refused when the
/// name has no letter or digit to make one from.
pub(crate) fn derived_slug(name: &str) -> Result<String, StoreError> {
    let s = pm_domain::text::slugify(name, MAX_SLUG - 4);
    if s.is_empty() {
        return Err(invalid(
            "slug",
            format!("cannot be derived from the name {name:?} (no letter or digit): give one"),
        ));
    }
    Ok(s)
}

/// Attempts at a free derived slug (`name`, `name-2`, ... `name-N`) before answering that it
/// is taken.
pub(crate) const DERIVED_SLUG_ATTEMPTS: u32 = 50;

/// The `n`th candidate for a derived slug: `base`, then `base-2`, `base-3`...
pub(crate) fn nth_slug(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_owned()
    } else {
        format!("{base}-{n}")
    }
}

/// The longest slug.
pub(crate) const MAX_SLUG: usize = 120;

/// The largest stock quantity of one warehouse (or one supplier): a billion units. Sums over
/// every warehouse of every product then fit the 64-bit integers of both backends (SQLite's
/// `SUM` fails on overflow instead of widening).
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// A stock quantity: 0 to [`MAX_QUANTITY`].
pub(crate) fn quantity(field: &'static str, v: i64) -> Result<i64, StoreError> {
    if !(0..=MAX_QUANTITY).contains(&v) {
        return Err(invalid(field, format!("must be 0 to {MAX_QUANTITY}, found {v}")));
    }
    Ok(v)
}

/// A count that cannot be negative (stock, lead time).
pub(crate) fn non_negative<T: PartialOrd + Default + std::fmt::Display>(
    field: &'static str,
    v: T,
) -> Result<T, StoreError> {
    if v < T::default() {
        return Err(invalid(field, format!("must not be negative, found {v}")));
    }
    Ok(v)
}

/// An amount that cannot be negative (every price and cost).
pub(crate) fn non_negative_money(field: &'static str, m: Money) -> Result<Money, StoreError> {
    m.amount()
        .non_negative()
        .map_err(|e| invalid(field, e.to_string()))?;
    if !m.currency().is_money() {
        return Err(invalid(
            "currency",
            pm_domain::MoneyError::NotMoney(m.currency()).to_string(),
        ));
    }
    Ok(m)
}

/// A price shown to buyers (retail, sale, msrp): [`non_negative_money`], and no more decimals
/// than its currency's minor units (`300.5 JPY`, `19.999 EUR` are refused). Cost prices keep up
/// to four decimals: supplier price lists quote fractions of a cent.
pub(crate) fn selling_price(field: &'static str, m: Money) -> Result<Money, StoreError> {
    let m = non_negative_money(field, m)?;
    m.check_price().map_err(|e| invalid(field, e.to_string()))?;
    Ok(m)
}

// ---- database errors -------------------------------------------------------------------

pub(crate) fn is_unique(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(crate) fn is_foreign_key(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// A row a write refers to: the input field, its table and the id given.
pub(crate) type Ref = (&'static str, &'static str, Uuid);

impl Catalog {
    /// Turns a failed write into the error the caller can act on: a unique violation into
    /// `conflict`, a foreign-key violation into [`StoreError::Invalid`] naming the first of
    /// `refs` that does not exist. Neither SQLite nor PostgreSQL (portably) say which key
    /// failed, so the references are looked up, only on this failure path.
    pub(crate) async fn refused(
        &self,
        e: sqlx::Error,
        conflict: impl FnOnce() -> StoreError,
        refs: &[Ref],
    ) -> StoreError {
        if is_unique(&e) {
            return conflict();
        }
        if !is_foreign_key(&e) {
            return e.into();
        }
        for &(field, table, id) in refs {
            match self.exists(table, id).await {
                Ok(true) => {}
                Ok(false) => return invalid(field, format!("no {} with id {id}", singular(table))),
                Err(e) => return e,
            }
        }
        e.into()
    }

    /// [`Catalog::refused`] for the database error of a result, if that is what it holds.
    pub(crate) async fn explain<T>(
        &self,
        res: Result<T, StoreError>,
        conflict: impl FnOnce() -> StoreError,
        refs: &[Ref],
    ) -> Result<T, StoreError> {
        match res {
            Err(StoreError::Database(e)) => Err(self.refused(e, conflict, refs).await),
            other => other,
        }
    }

    /// Whether `table` has a row with this id (`table` is one of ours, never input).
    pub(crate) async fn exists(&self, table: &'static str, id: Uuid) -> Result<bool, StoreError> {
        let key = if table == "bundles" { "product_id" } else { "id" };
        let sql = format!("SELECT 1 FROM {table} WHERE {key} = $1");
        Ok(with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .is_some()
        }))
    }

    /// Deletes the row `key = id` of `table`; `NotFound` when there was none.
    pub(crate) async fn delete_row(
        &self,
        table: &'static str,
        key: &'static str,
        entity: &'static str,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {table} WHERE {key} = $1");
        let done = with_conn!(self.db, |conn| {
            sqlx::query(&sql)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(not_found(entity, id));
        }
        Ok(())
    }
}

pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        entity,
        id: id.to_string(),
    }
}

fn singular(table: &str) -> &str {
    match table {
        "categories" => "category",
        "bundles" => "bundle",
        t => t.strip_suffix('s').unwrap_or(t),
    }
}

// ---- rows with an id: get and list -----------------------------------------------------

/// A table whose rows have a UUIDv7 `id`: read by id and listed in id order (creation order).
pub(crate) trait Entity: Sized {
    /// Name in errors ("supplier 0190… not found").
    const NAME: &'static str;
    const TABLE: &'static str;
    const COLUMNS: &'static str;
    fn from_row(row: &impl RowExt) -> Result<Self, StoreError>;
    fn id(&self) -> Uuid;
}

/// A bind value of a list filter.
pub(crate) enum Arg {
    Uuid(Uuid),
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl Catalog {
    pub(crate) async fn get_entity<T: Entity>(&self, id: Uuid) -> Result<T, StoreError> {
        let sql = format!("SELECT {} FROM {} WHERE id = $1", T::COLUMNS, T::TABLE);
        with_conn!(self.db, |conn| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
            T::from_row(&row.ok_or_else(|| not_found(T::NAME, id))?)
        })
    }

    /// One keyset page of `T` in id order. `filter` is an SQL condition over `$2`, `$3`, ...,
    /// bound to `args` in order.
    pub(crate) async fn list_entities<T: Entity>(
        &self,
        filter: &str,
        args: &[Arg],
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<T>, StoreError> {
        let after = after(cursor)?;
        let sql = format!(
            "SELECT {} FROM {} WHERE id > $1 AND {filter} ORDER BY id LIMIT ${}",
            T::COLUMNS,
            T::TABLE,
            args.len() + 2
        );
        let items = with_conn!(self.db, |conn| {
            let mut q = sqlx::query(&sql).bind(after);
            for arg in args {
                q = match arg {
                    Arg::Uuid(u) => q.bind(*u),
                    Arg::Text(s) => q.bind(s.as_str()),
                    Arg::Bool(b) => q.bind(*b),
                    Arg::Time(t) => q.bind(*t),
                };
            }
            let rows = q.bind(fetch_limit(limit)).fetch_all(&mut *conn).await?;
            rows.iter().map(T::from_row).collect::<Result<Vec<T>, _>>()?
        });
        Ok(page(items, limit, T::id))
    }

    /// History rows (`T` over a `*_history` table) of one product changed in `[from, to)`,
    /// oldest first.
    pub(crate) async fn history<T: Entity>(
        &self,
        product_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<T>, StoreError> {
        let filter = "product_id = $2 AND changed_at >= $3 AND changed_at < $4";
        let args = [Arg::Uuid(product_id), Arg::Time(from), Arg::Time(to)];
        self.list_entities(filter, &args, limit, cursor).await
    }
}

/// What the catalog tests share: a catalog per backend and products to hang things on.
#[cfg(test)]
pub(crate) mod testing {
    use pm_config::Database;

    use super::super::{Catalog, NewProduct};
    use crate::testing::TestEnv;
    use crate::Databases;

    pub(crate) async fn open(env: &TestEnv) -> (Databases, Catalog) {
        let dbs = Databases::open(&env.settings).await.unwrap();
        let cat = Catalog::new(dbs.get(Database::Catalog).clone());
        (dbs, cat)
    }

    pub(crate) async fn product(cat: &Catalog, title: &str) -> uuid::Uuid {
        let p = NewProduct {
            title: title.into(),
            ..Default::default()
        };
        cat.create_product(p).await.unwrap().id
    }

    /// Asserts an `Invalid` error naming `field`.
    #[track_caller]
    pub(crate) fn assert_invalid<T: std::fmt::Debug>(
        res: Result<T, crate::StoreError>,
        field: &str,
        label: &str,
    ) {
        match res {
            Err(crate::StoreError::Invalid { field: f, .. }) if f == field => {}
            other => panic!("{label}: expected invalid {field}, got {other:?}"),
        }
    }

    /// Asserts a `Conflict` error naming `field`.
    #[track_caller]
    pub(crate) fn assert_conflict<T: std::fmt::Debug>(
        res: Result<T, crate::StoreError>,
        field: &str,
        label: &str,
    ) {
        match res {
            Err(crate::StoreError::Conflict { field: f, .. }) if f == field => {}
            other => panic!("{label}: expected conflict on {field}, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::positional;
    use crate::Backend::{Postgres, Sqlite};

    #[test]
    fn sqlite_gets_anonymous_parameters_only_when_they_are_in_order() {
        let sql = "INSERT INTO t VALUES ($1, $2), ($3, CAST($4 AS TEXT)) RETURNING id";
        assert_eq!(
            positional(Sqlite, sql),
            "INSERT INTO t VALUES (?, ?), (?, CAST(? AS TEXT)) RETURNING id"
        );
        assert_eq!(positional(Postgres, sql), sql);
        for kept in [
            "SELECT $2, $1",
            "SELECT $1, $1",
            "SELECT 1",
            "SELECT $1, $3",
            "SELECT $0",
        ] {
            assert_eq!(positional(Sqlite, kept), kept);
        }
        assert_eq!(positional(Sqlite, "SELECT $1 || '$', $2"), "SELECT ? || '$', ?");
        let list = "x IN ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)";
        assert_eq!(
            positional(Sqlite, list),
            format!("x IN ({})", ["?"; 11].join(","))
        );
    }
}
