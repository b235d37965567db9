//! What handlers can reach.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use pm_actors::ActorSystem;
use pm_config::Settings;
use pm_storage::redis::Redis;
use pm_storage::ObjectStore;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub actors: ActorSystem,
    pub objects: Arc<dyn ObjectStore>,
    pub redis: Option<Redis>,
    pub prometheus: PrometheusHandle,
    pub started: Instant,
    /// Set when the root supervisor gave up: liveness turns red.
    pub escalated: Arc<AtomicBool>,
}

impl AppState {
    pub fn is_escalated(&self) -> bool {
        self.escalated.load(Ordering::Acquire)
    }
}
