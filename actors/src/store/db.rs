//! The store actor of a database with no queries of its own yet: it owns the pool, answers
//! health pings and shows the pool's state. Later features add their messages here or give
//! their database an actor of its own like [`super::catalog`].

use std::time::Duration;

use pm_storage::{Db, StoreError};
use pm_supervisors::{Behaviour, Ctx, Handles, Reply};

use super::Ping;

pub struct DbStore {
    db: Db,
}

impl DbStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl Behaviour for DbStore {
    fn observe(&self) -> serde_json::Value {
        super::observe(&self.db)
    }
}

impl Handles<Ping> for DbStore {
    type Ok = Duration;
    type Err = StoreError;
    fn handle(&mut self, _: Ping, _ctx: &Ctx<Self>) -> Reply<Result<Duration, StoreError>> {
        super::ping(&self.db)
    }
}

/// The rejects of an import job, in file order (the imports database's store).
#[derive(Debug)]
pub struct ListImportErrors {
    pub job_id: uuid::Uuid,
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Handles<ListImportErrors> for DbStore {
    type Ok = pm_storage::catalog::Page<pm_storage::imports::ImportError>;
    type Err = StoreError;
    fn is_failure(e: &StoreError) -> bool {
        !e.is_callers()
    }
    fn handle(&mut self, m: ListImportErrors, _ctx: &Ctx<Self>) -> Reply<Result<Self::Ok, StoreError>> {
        let imports = pm_storage::imports::Imports::new(self.db.clone());
        Reply::spawn(async move { imports.errors(m.job_id, m.limit, m.cursor.as_deref()).await })
    }
}
