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

    pub fn db(&self) -> &Db {
        &self.db
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

super::db_query!(pm_storage::imports::Imports, ListImportErrors => pm_storage::catalog::Page<pm_storage::imports::ImportError>, |imports, m| async move {
    imports.errors(m.job_id, m.limit, m.cursor.as_deref()).await
});

use pm_storage::imports::{ImportRollback, ImportStatistics, MappingTemplate};

/// Saves a supplier's mapping template under its name (the same name replaces it).
#[derive(Debug)]
pub struct SaveTemplate {
    pub supplier_id: uuid::Uuid,
    pub name: String,
    pub template: serde_json::Value,
    pub by: Option<uuid::Uuid>,
}
super::db_query!(pm_storage::imports::Imports, SaveTemplate => MappingTemplate, |i, m| async move {
    i.save_template(m.supplier_id, &m.name, &m.template, m.by).await
});

#[derive(Debug)]
pub struct GetTemplate(pub uuid::Uuid);
super::db_query!(pm_storage::imports::Imports, GetTemplate => MappingTemplate, |i, m| async move { i.template(m.0).await });

#[derive(Debug)]
pub struct ListTemplates(pub uuid::Uuid);
super::db_query!(pm_storage::imports::Imports, ListTemplates => Vec<MappingTemplate>, |i, m| async move { i.templates(m.0).await });

#[derive(Debug)]
pub struct DeleteTemplate(pub uuid::Uuid);
super::db_query!(pm_storage::imports::Imports, DeleteTemplate => (), |i, m| async move { i.delete_template(m.0).await });

/// A supplier's import statistics, newest day first.
#[derive(Debug)]
pub struct Statistics {
    pub supplier_id: uuid::Uuid,
    pub days: u32,
}
super::db_query!(pm_storage::imports::Imports, Statistics => Vec<ImportStatistics>, |i, m| async move {
    i.statistics(m.supplier_id, m.days).await
});

/// Records a rollback; `false` if the job was already rolled back.
#[derive(Debug)]
pub struct RecordRollback {
    pub job_id: uuid::Uuid,
    pub by: Option<uuid::Uuid>,
    pub report: serde_json::Value,
}
super::db_query!(pm_storage::imports::Imports, RecordRollback => bool, |i, m| async move {
    i.record_rollback(m.job_id, m.by, &m.report).await
});

#[derive(Debug)]
pub struct RollbackOf(pub uuid::Uuid);
super::db_query!(pm_storage::imports::Imports, RollbackOf => Option<ImportRollback>, |i, m| async move { i.rollback_of(m.0).await });

/// A job's log, oldest first.
#[derive(Debug)]
pub struct ImportLogs {
    pub job_id: uuid::Uuid,
    pub limit: u32,
}
super::db_query!(pm_storage::imports::Imports, ImportLogs => Vec<pm_storage::imports::ImportLog>, |i, m| async move { i.logs(m.job_id, m.limit).await });

/// A job's file as recorded.
#[derive(Debug)]
pub struct ImportFileOf(pub uuid::Uuid);
super::db_query!(pm_storage::imports::Imports, ImportFileOf => Option<pm_storage::imports::ImportFile>, |i, m| async move { i.file(m.0).await });
