//! The analytics store actor: the activity log (and, later, metrics and reports).

use std::time::Duration;

use pm_storage::analytics::{Activity, Analytics};
use pm_storage::StoreError;
use pm_supervisors::{Behaviour, Ctx, Handles, Reply};

use super::Ping;

pub struct AnalyticsStore {
    analytics: Analytics,
}

impl AnalyticsStore {
    pub fn new(analytics: Analytics) -> Self {
        Self { analytics }
    }
}

impl Behaviour for AnalyticsStore {
    fn observe(&self) -> serde_json::Value {
        super::observe(self.analytics.db())
    }
}

impl Handles<Ping> for AnalyticsStore {
    type Ok = Duration;
    type Err = StoreError;
    fn handle(&mut self, _: Ping, _ctx: &Ctx<Self>) -> Reply<Result<Duration, StoreError>> {
        super::ping(self.analytics.db())
    }
}

/// Records a batch of writes (from [`crate::activity::ActivityWriter`]).
#[derive(Debug)]
pub struct RecordActivities(pub Vec<Activity>);

impl Handles<RecordActivities> for AnalyticsStore {
    type Ok = ();
    type Err = StoreError;
    fn handle(&mut self, m: RecordActivities, _ctx: &Ctx<Self>) -> Reply<Result<(), StoreError>> {
        let a = self.analytics.clone();
        Reply::spawn(async move { a.record_activities(&m.0).await })
    }
}

/// A page of the activity log.
#[derive(Debug)]
pub struct ListActivity(pub pm_storage::analytics::ActivityFilter);

impl Handles<ListActivity> for AnalyticsStore {
    type Ok = pm_storage::catalog::Page<Activity>;
    type Err = StoreError;
    fn handle(&mut self, m: ListActivity, _ctx: &Ctx<Self>) -> Reply<Result<Self::Ok, StoreError>> {
        let a = self.analytics.clone();
        Reply::spawn(async move { a.list_activity(&m.0).await })
    }

    fn is_failure(e: &StoreError) -> bool {
        !e.is_callers()
    }
}

/// The most recent activity, optionally for one entity id.
#[derive(Debug)]
pub struct RecentActivity {
    pub entity_id: Option<String>,
    pub limit: u32,
}

impl Handles<RecentActivity> for AnalyticsStore {
    type Ok = Vec<Activity>;
    type Err = StoreError;
    fn handle(&mut self, m: RecentActivity, _ctx: &Ctx<Self>) -> Reply<Result<Vec<Activity>, StoreError>> {
        let a = self.analytics.clone();
        Reply::spawn(async move { a.recent_activity(m.entity_id.as_deref(), m.limit).await })
    }
}
