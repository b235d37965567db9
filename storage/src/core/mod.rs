//! Queries of the core database: who may do what.
//!
//! - [`amazon`]: Amazon SP-API seller accounts, secrets encrypted.
//! - [`users`]: users, their roles, login records.
//! - [`roles`]: roles and their permissions; the built-in roles are ensured at start.
//! - [`tokens`]: rotating refresh tokens (stored hashed) with reuse detection.
//! - [`api_keys`]: scoped API keys (stored hashed, found by prefix).
//! - [`settings`]: application settings (key → JSON).
//! - [`notifications`]: per-user notifications.

pub mod amazon;
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

#[cfg(test)]
mod tests;
