//! Queries of the core database: who may do what.
//!
//! - [`users`]: users, their roles, login records.
//! - [`roles`]: roles and their permissions; the built-in roles are ensured at start.
//! - [`tokens`]: rotating refresh tokens (stored hashed) with reuse detection.
//! - [`api_keys`]: scoped API keys (stored hashed, found by prefix).
//! - [`settings`]: application settings (key → JSON).
//! - [`notifications`]: per-user notifications.

pub mod api_keys;
pub mod notifications;
pub mod roles;
pub mod settings;
pub mod tokens;
pub mod users;

use crate::Db;

/// Core queries on the core database.
#[derive(Debug, Clone)]
pub struct Core {
    db: Db,
}

impl Core {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// SHA-256 of a high-entropy token, hex: enough for random tokens (no dictionary to attack),
/// and lets the token be found by its hash with an index.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Builds the next-page cursor of a list ordered by UUIDv7 id.
pub(crate) fn next_cursor<T>(
    items: &mut Vec<T>,
    limit: u32,
    id: impl Fn(&T) -> uuid::Uuid,
) -> Option<String> {
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|x| id(x).to_string())
    } else {
        None
    }
}

pub(crate) fn parse_cursor(cursor: Option<&str>) -> Result<uuid::Uuid, crate::StoreError> {
    match cursor {
        None => Ok(uuid::Uuid::nil()),
        Some(c) => uuid::Uuid::try_parse(c).map_err(|_| crate::StoreError::BadCursor),
    }
}

#[cfg(test)]
mod tests;
