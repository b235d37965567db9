//! The code2asin database's queries, as messages of its store ([`super::db::DbStore`]).

use pm_storage::catalog::Page;
use pm_storage::code2asin::{
    Code2asin, Code2asinLog, Code2asinStatistics, EanResult, JobState, NewJobState, ResultStatus,
    SupplierConfig,
};
use uuid::Uuid;

/// A job's settings and counters (none before its run started, unless paused).
#[derive(Debug)]
pub struct JobStateOf(pub Uuid);
super::db_query!(Code2asin, JobStateOf => Option<JobState>, |c, m| async move { c.job_state(m.0).await });

/// Sets a job's pause switch (making its state if the run has not started yet).
#[derive(Debug)]
pub struct SetPaused {
    pub job_id: Uuid,
    pub paused: bool,
}
super::db_query!(Code2asin, SetPaused => (), |c, m| async move {
    if !c.set_paused(m.job_id, m.paused).await? {
        let state = NewJobState {
            job_id: m.job_id,
            supplier_id: None,
            account_key: String::new(),
            marketplace_id: String::new(),
            auto_apply_threshold: 1.0,
        };
        c.ensure_state(&state).await?;
        c.set_paused(m.job_id, m.paused).await?;
    }
    Ok(())
});

/// A page of a job's results.
#[derive(Debug)]
pub struct ListResults {
    pub job_id: Uuid,
    pub status: Option<ResultStatus>,
    pub limit: u32,
    pub cursor: Option<String>,
}
super::db_query!(Code2asin, ListResults => Page<EanResult>, |c, m| async move {
    c.results(m.job_id, m.status, m.limit, m.cursor.as_deref()).await
});

#[derive(Debug)]
pub struct ResultOf {
    pub job_id: Uuid,
    pub ean: String,
}
super::db_query!(Code2asin, ResultOf => Option<EanResult>, |c, m| async move { c.result(m.job_id, &m.ean).await });

/// Records a person's choice of ASIN for an EAN.
#[derive(Debug)]
pub struct Choose {
    pub job_id: Uuid,
    pub ean: String,
    pub asin: String,
    pub by: Option<Uuid>,
}
super::db_query!(Code2asin, Choose => bool, |c, m| async move { c.choose(m.job_id, &m.ean, &m.asin, m.by).await });

#[derive(Debug)]
pub struct Code2asinLogs {
    pub job_id: Uuid,
    pub limit: u32,
}
super::db_query!(Code2asin, Code2asinLogs => Vec<Code2asinLog>, |c, m| async move { c.logs(m.job_id, m.limit).await });

/// Statistics of a supplier (`none`: plain EAN lists), newest day first.
#[derive(Debug)]
pub struct Code2asinStats {
    pub supplier: String,
    pub days: u32,
}
super::db_query!(Code2asin, Code2asinStats => Vec<Code2asinStatistics>, |c, m| async move { c.statistics(&m.supplier, m.days).await });

#[derive(Debug)]
pub struct SupplierConfigOf(pub Uuid);
super::db_query!(Code2asin, SupplierConfigOf => Option<SupplierConfig>, |c, m| async move { c.supplier_config(m.0).await });

#[derive(Debug)]
pub struct PutSupplierConfig(pub SupplierConfig);
super::db_query!(Code2asin, PutSupplierConfig => (), |c, m| async move { c.put_supplier_config(&m.0).await });
