//! Keyset pagination shared by every list: pages walk the UUIDv7 primary key (`id > $1`), one
//! extra row tells whether another page follows, and the cursor is the last id.

use uuid::Uuid;

use crate::catalog::Page;
use crate::StoreError;

/// The id to list after: the cursor, or the nil UUID (smaller than every id) for the first
/// page, so that every list query has the same `id > $1` shape and uses the primary key.
pub(crate) fn after(cursor: Option<&str>) -> Result<Uuid, StoreError> {
    cursor
        .map(|c| Uuid::try_parse(c).map_err(|_| StoreError::BadCursor))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Rows to fetch for a page of `limit`: one more, to know whether there is a next page.
pub(crate) fn fetch_limit(limit: u32) -> i64 {
    i64::from(limit) + 1
}

/// Cuts the extra row off and sets the cursor to the last id when there is more.
pub(crate) fn page<T>(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let limit = limit as usize;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|t| id(t).to_string())
    } else {
        None
    };
    Page { items, next_cursor }
}
