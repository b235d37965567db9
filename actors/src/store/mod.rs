//! Store actors: one per database, each owning that database's pool.

pub mod analytics;
pub mod catalog;
pub mod catalog_entities;
pub mod core;
pub mod db;

use std::time::Duration;

use pm_storage::{Db, StoreError};
use pm_supervisors::Reply;

/// What a caller of a store actor can get back instead of an answer.
pub type StoreCallError = pm_supervisors::CallError<StoreError>;

/// Round trip to the actor's database; answers the latency.
#[derive(Debug, Clone, Copy)]
pub struct Ping;

/// Shared by every store actor: ping the database from the worker pool.
fn ping(db: &Db) -> Reply<Result<Duration, StoreError>> {
    let db = db.clone();
    Reply::spawn(async move { db.ping().await })
}

/// The state snapshot every store actor shows in `/admin/actors/{name}`.
fn observe(db: &Db) -> serde_json::Value {
    serde_json::json!({
        "database": db.database,
        "backend": db.backend(),
        "pool": db.stats(),
    })
}
