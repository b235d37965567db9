//! Everything the service keeps: the seven databases, object storage and the Redis connection.
//!
//! - [`db`]: one pool per logical database on SQLite (default) or PostgreSQL; creation,
//!   migrations (`migrations/{postgres,sqlite}/<database>/`), health pings and pool stats.
//! - [`core`]: users, roles, tokens, API keys, settings, notifications.
//! - [`crypto`]: AES-256-GCM for secrets kept in a database (Amazon credentials).
//! - [`analytics`]: the activity log.
//! - [`catalog`]: queries of the catalog database (products).
//! - [`imports`]: the rows imports rejected (the imports database beyond its queue).
//! - [`code2asin`]: ASIN jobs' EANs and results, the persisted Amazon cache, statistics, logs.
//! - [`jobs`]: the durable job queues (one table per database), claimed under a lease.
//! - [`object_store`]: one [`ObjectStore`] interface over the local filesystem and any S3 API.
//! - [`redis`]: the optional Redis connection (plain or `rediss://`).
//! - [`tls`]: the one TLS stack (rustls on ring) of all three.
//!
//! Nothing here is called from HTTP handlers: the store actors own the pools and call these.

pub mod analytics;
pub mod cache;
pub mod catalog;
pub mod code2asin;
pub mod core;
pub mod crypto;
pub mod db;
pub mod error;
pub mod imports;
pub mod jobs;
mod keyset;
pub mod media;
pub mod object_store;
pub mod redis;
pub mod tls;

pub use db::{Backend, Databases, Db, Pool, PoolStats};
pub use error::StoreError;
pub use object_store::{ObjectError, ObjectMeta, ObjectStore};

#[cfg(test)]
pub(crate) mod testing;
