//! What handlers can reach.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use pm_actors::ActorSystem;
use pm_config::{Secret, Settings};
use pm_storage::redis::Redis;
use pm_storage::ObjectStore;

/// Shared by every handler. One `Arc`: axum clones the state for every extractor and
/// middleware of every request, and one reference count is much cheaper than the forty the
/// fields hold (contended refcounts bounce between cores).
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl AppState {
    pub fn new(inner: AppInner) -> Self {
        Self(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// What handlers can reach, through [`AppState`].
pub struct AppInner {
    pub settings: Arc<Settings>,
    pub actors: ActorSystem,
    pub objects: Arc<dyn ObjectStore>,
    pub redis: Option<Redis>,
    /// L1 in-process + L2 Redis cache of serialized responses.
    pub cache: pm_storage::cache::Cache,
    pub prometheus: PrometheusHandle,
    pub started: Instant,
    /// Set when the root supervisor gave up: liveness turns red.
    pub escalated: Arc<AtomicBool>,
    pub keys: crate::auth::Keys,
    pub login_limits: Arc<crate::auth::limits::LoginLimits>,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// API keys by prefix, emptied by the change bus when a key changes.
    pub api_keys: crate::sinks::ApiKeyCache,
    /// Users' token generations (access token revocation).
    pub generations: crate::sinks::Generations,
}

impl AppInner {
    pub fn is_escalated(&self) -> bool {
        self.escalated.load(Ordering::Acquire)
    }
}
