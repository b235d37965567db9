//! Store actors: one per database, each owning that database's pool.

pub mod analytics;
pub mod catalog;
pub mod catalog_entities;
pub mod code2asin;
pub mod core;
pub mod db;
pub mod media;

use std::time::Duration;

use pm_storage::{Db, StoreError};
use pm_supervisors::Reply;

/// Implements `Handles<Write<$msg>>` for `$store`: runs `$body` on the worker pool (a block
/// over the store's handle `$c` and the message `$m` that returns `(answer, changes)`), then
/// publishes the changes on the store's change bus before answering. The future runs to its
/// end even if the caller has gone, so a committed write always invalidates and is audited.
macro_rules! write_handler {
    ($store:ty, $handle:ident, $msg:ty => $ok:ty, |$c:ident, $m:ident| $body:expr) => {
        impl pm_supervisors::Handles<$crate::changes::Write<$msg>> for $store {
            type Ok = $ok;
            type Err = pm_storage::StoreError;
            fn is_failure(e: &pm_storage::StoreError) -> bool {
                !e.is_callers()
            }
            #[allow(unused_variables)]
            fn handle(
                &mut self,
                w: $crate::changes::Write<$msg>,
                _ctx: &pm_supervisors::Ctx<Self>,
            ) -> pm_supervisors::Reply<Result<$ok, pm_storage::StoreError>> {
                let $c = self.$handle.clone();
                let bus = self.bus.clone();
                pm_supervisors::Reply::spawn(async move {
                    let $crate::changes::Write { origin, msg: $m } = w;
                    let r: Result<($ok, Vec<$crate::changes::Change>), pm_storage::StoreError> =
                        async { $body }.await;
                    let (ok, changes) = r?;
                    bus.publish(&origin, changes).await;
                    Ok(ok)
                })
            }
        }
    };
}
pub(crate) use write_handler;

/// Implements `Handles<$msg>` for [`db::DbStore`] with one query of `$queries` (a storage
/// handle built from the store's pool: `Imports`, `Code2asin`, `Media`) on the worker pool.
macro_rules! db_query {
    ($queries:ty, $msg:ty => $ok:ty, |$c:ident, $m:ident| $body:expr) => {
        impl pm_supervisors::Handles<$msg> for $crate::store::db::DbStore {
            type Ok = $ok;
            type Err = pm_storage::StoreError;
            fn is_failure(e: &pm_storage::StoreError) -> bool {
                !e.is_callers()
            }
            fn handle(
                &mut self,
                $m: $msg,
                _ctx: &pm_supervisors::Ctx<Self>,
            ) -> pm_supervisors::Reply<Result<$ok, pm_storage::StoreError>> {
                let $c = <$queries>::new(self.db().clone());
                pm_supervisors::Reply::spawn(async move { $body.await })
            }
        }
    };
}
pub(crate) use db_query;

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
