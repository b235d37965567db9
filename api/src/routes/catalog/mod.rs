//! `/api/v1` routes of the catalog entities around products, one module per group. Reads need
//! `catalog:read`, writes `catalog:write`; every write is audited. Lists are keyset pages
//! (`limit`, `cursor`); amounts are decimal strings both ways.
//!
//! Search results (`Kind::SearchResults`) filter on suppliers' offers, categories, prices and
//! stocks, so writes to those drop them. Supplier, brand and category reads are cached under
//! their kinds and every write to one drops its kind.

mod attributes;
mod brands;
mod bundles;
mod categories;
mod prices;
mod seo;
mod stocks;
mod suppliers;
mod variants;

use std::future::Future;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use pm_domain::{Amount, Currency, Money};
use pm_storage::cache::Kind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(suppliers::router())
        .merge(brands::router())
        .merge(categories::router())
        .merge(prices::router())
        .merge(stocks::router())
        .merge(attributes::router())
        .merge(variants::router())
        .merge(bundles::router())
        .merge(seo::router())
}

pub(crate) use crate::extract::Json as Body;
pub(crate) use crate::extract::{nullable, page_limit, DEFAULT_PAGE};

/// A uuid from the path, refused naming `field` (`id`, `category_id`, ...).
pub(crate) fn path_id(field: &str, s: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(s).map_err(|_| ApiError::invalid(field, "not a uuid"))
}

/// `limit` and `cursor` of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The window and page of a history list: changes in `[from, to)`, oldest first. `from`
/// defaults to the beginning of time, `to` to the end of it.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Changes at or after this time (RFC 3339); default: the beginning.
    #[param(value_type = Option<DateTime<Utc>>)]
    from: Option<String>,
    /// Changes before this time (RFC 3339), after `from`; default: the end of time.
    #[param(value_type = Option<DateTime<Utc>>)]
    to: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(crate) struct History {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub limit: u32,
    pub cursor: Option<String>,
}

impl HistoryQuery {
    pub(crate) fn check(self) -> Result<History, ApiError> {
        let mut errors = Vec::new();
        let mut time = |field: &str, v: Option<&str>, default: DateTime<Utc>| match v {
            None => default,
            Some(v) => DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|e| {
                    errors.push(FieldError::new(
                        field,
                        format!("{e}: expected an RFC 3339 time such as 2025-01-31T12:00:00Z"),
                    ));
                    default
                }),
        };
        let from = time("from", self.from.as_deref(), DateTime::UNIX_EPOCH);
        let end = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        let to = time("to", self.to.as_deref(), end);
        if to <= from && errors.is_empty() {
            errors.push(FieldError::new("to", "must be after from"));
        }
        let limit = page_limit(self.limit).unwrap_or_else(|e| {
            errors.push(e);
            DEFAULT_PAGE
        });
        if errors.is_empty() {
            Ok(History {
                from,
                to,
                limit,
                cursor: self.cursor,
            })
        } else {
            Err(ApiError::Invalid(errors))
        }
    }
}

/// An amount in a currency, as a body carries it: `{"amount": "19.99", "currency": "EUR"}`.
/// The amount is a string: a JSON number is refused (it may have been a float already).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MoneyInput)]
pub(crate) struct MoneyBody {
    amount: Amount,
    currency: Currency,
}

impl From<MoneyBody> for Money {
    fn from(m: MoneyBody) -> Money {
        Money::new(m.amount, m.currency)
    }
}

/// Serves a read from the cache: the serialized answer under `(kind, key)`, loaded by `load`
/// on a miss.
pub(crate) async fn cached<T, F>(s: &AppState, kind: Kind, key: &str, load: F) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Future<Output = Result<T, ApiError>>,
{
    let bytes = s
        .cache
        .get_or_load(kind, key, async {
            let value = load.await?;
            serde_json::to_vec(&value)
                .map(Bytes::from)
                .map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// The cache key of a list page.
pub(crate) fn page_key(prefix: &str, limit: u32, cursor: Option<&str>) -> String {
    format!("{prefix}:{limit}:{}", cursor.unwrap_or(""))
}
