//! Write-side change events: every committed write publishes what it changed, from the store
//! actor's write path itself, after the commit and before the caller gets its answer.
//!
//! A write message is sent wrapped in [`Write`], which names its [`Origin`] (who, which
//! request); the store actors handle write messages only in that form, so no write can skip
//! its events. [`ChangeBus::publish`] then, in order:
//!
//! 1. awaits every [`ChangeSink`] (the response cache drops what the write made stale; the API
//!    key cache forgets revoked keys), so a caller who got its answer never reads stale data,
//!    and a request dropped after the commit (its client gone, its timeout passed) still
//!    invalidates: the store's future runs to its end whatever the caller does;
//! 2. queues one activity-log entry per change on the bounded [`ActivityQueue`], written in
//!    batches by [`crate::activity::ActivityWriter`]; an entry that does not fit is counted in
//!    `pm_activity_dropped_total`, never waited for;
//! 3. publishes live events on the [`Hub`] (`catalog.products.<id>`, `catalog.products`).
//!
//! A bulk write publishes one change per batch with every id in it, not one per item.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::RwLock;
use pm_storage::analytics::Activity;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::events::Hub;

/// Who made a write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    /// Username, API key name, or the system part (`trash purge`, `import`).
    pub name: String,
    pub request_id: Option<String>,
}

impl Origin {
    /// A write the system makes on its own.
    pub fn system(name: &str) -> Self {
        Self {
            name: format!("system:{name}"),
            ..Self::default()
        }
    }
}

/// A write message and who sends it. Store actors take write messages only in this form.
#[derive(Debug)]
pub struct Write<M> {
    pub origin: Origin,
    pub msg: M,
}

/// `msg.by(origin)` wraps a write message.
pub trait By: Sized {
    fn by(self, origin: Origin) -> Write<Self> {
        Write { origin, msg: self }
    }
}

impl<M> By for M {}

/// The kinds of things a write changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Product,
    Category,
    Brand,
    Supplier,
    SupplierProduct,
    Price,
    Stock,
    Attribute,
    Variant,
    Bundle,
    Seo,
    User,
    Role,
    ApiKey,
    Setting,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Product => "product",
            Entity::Category => "category",
            Entity::Brand => "brand",
            Entity::Supplier => "supplier",
            Entity::SupplierProduct => "supplier_product",
            Entity::Price => "price",
            Entity::Stock => "stock",
            Entity::Attribute => "attribute",
            Entity::Variant => "variant",
            Entity::Bundle => "bundle",
            Entity::Seo => "seo",
            Entity::User => "user",
            Entity::Role => "role",
            Entity::ApiKey => "api_key",
            Entity::Setting => "setting",
        }
    }
}

/// What one committed write changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub entity: Entity,
    /// `create`, `update`, `delete`, `bulk_upsert`, ...
    pub action: &'static str,
    /// The ids written (every id of a bulk batch).
    pub ids: Vec<String>,
    /// Replaces the id in the activity log when set (`"120 created, 3 updated"`).
    pub summary: Option<String>,
}

impl Change {
    pub fn one(entity: Entity, action: &'static str, id: impl ToString) -> Self {
        Self {
            entity,
            action,
            ids: vec![id.to_string()],
            summary: None,
        }
    }

    pub fn many(entity: Entity, action: &'static str, ids: Vec<String>, summary: String) -> Self {
        Self {
            entity,
            action,
            ids,
            summary: Some(summary),
        }
    }
}

/// Something that must see every change before the writer gets its answer.
pub trait ChangeSink: Send + Sync + 'static {
    fn apply<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, ()>;
}

/// The bounded queue of activity entries between the writes and their batched writer.
#[derive(Clone)]
pub struct ActivityQueue {
    tx: mpsc::Sender<Activity>,
    /// Held by the writer while it waits for a batch (at most a second at a time) and by the
    /// final drain at shutdown; never by a publisher.
    pub(crate) rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Activity>>>,
    dropped: Arc<AtomicU64>,
}

impl ActivityQueue {
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self {
            tx,
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            dropped: Arc::default(),
        }
    }

    /// Queues an entry without waiting; counted as dropped if the queue is full.
    pub fn push(&self, a: Activity) {
        if self.tx.try_send(a).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("pm_activity_dropped_total").increment(1);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Entries waiting to be written.
    pub fn len(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next batch: waits up to `wait` for a first entry, then takes what is queued, up to
    /// `max`.
    pub(crate) async fn next_batch(&self, wait: Duration, max: usize) -> Vec<Activity> {
        let mut rx = self.rx.lock().await;
        let mut batch = Vec::new();
        if let Ok(Some(a)) = tokio::time::timeout(wait, rx.recv()).await {
            batch.push(a);
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
        }
        batch
    }
}

/// Where committed writes announce themselves. Cheap to clone.
#[derive(Clone)]
pub struct ChangeBus {
    /// Written once at start (sinks registered), read by every publish; never held across an
    /// await (the list is cloned out first).
    sinks: Arc<RwLock<Vec<Arc<dyn ChangeSink>>>>,
    activity: ActivityQueue,
    hub: Hub,
    published: Arc<AtomicU64>,
}

impl std::fmt::Debug for ChangeBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeBus")
            .field("published", &self.published.load(Ordering::Relaxed))
            .finish()
    }
}

impl ChangeBus {
    pub fn new(activity: ActivityQueue, hub: Hub) -> Self {
        Self {
            sinks: Arc::default(),
            activity,
            hub,
            published: Arc::default(),
        }
    }

    pub fn add_sink(&self, sink: impl ChangeSink) {
        self.sinks.write().push(Arc::new(sink));
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn activity(&self) -> &ActivityQueue {
        &self.activity
    }

    /// Announces committed changes: sinks (awaited), activity log (queued), live events.
    pub async fn publish(&self, origin: &Origin, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let sinks: Vec<Arc<dyn ChangeSink>> = self.sinks.read().clone();
        for sink in sinks {
            sink.apply(&changes).await;
        }
        let at = chrono::Utc::now();
        for c in &changes {
            metrics::counter!("pm_changes_total", "entity" => c.entity.as_str()).increment(1);
            self.published.fetch_add(1, Ordering::Relaxed);
            self.activity.push(Activity {
                id: Uuid::now_v7(),
                user_id: origin.user_id,
                api_key_id: origin.api_key_id,
                actor_name: origin.name.clone(),
                action: c.action.to_owned(),
                entity: c.entity.as_str().to_owned(),
                entity_id: c.summary.clone().or_else(|| c.ids.first().cloned()),
                request_id: origin.request_id.clone(),
                at,
            });
            if c.entity == Entity::Product {
                self.product_events(c);
            }
        }
    }

    fn product_events(&self, c: &Change) {
        /// Beyond this many ids a bulk change is announced as a summary only.
        const PER_ID: usize = 1000;
        if c.ids.len() <= PER_ID {
            for id in &c.ids {
                self.hub.publish(
                    format!("catalog.products.{id}"),
                    "product",
                    json!({ "action": c.action, "id": id }),
                );
            }
        }
        let ids = if c.ids.len() <= 100 {
            json!(c.ids)
        } else {
            serde_json::Value::Null
        };
        self.hub.publish(
            "catalog.products",
            "product",
            json!({ "action": c.action, "ids": ids, "count": c.ids.len(), "summary": c.summary }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    struct Record(Arc<Mutex<Vec<Change>>>);

    impl ChangeSink for Record {
        fn apply<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, ()> {
            Box::pin(async move { self.0.lock().extend_from_slice(changes) })
        }
    }

    #[tokio::test]
    async fn a_change_reaches_the_sinks_the_activity_queue_and_the_hub() {
        let hub = Hub::new();
        let mut sub = hub.subscriber(8);
        sub.subscribe("catalog.products.p1");
        let bus = ChangeBus::new(ActivityQueue::new(2), hub);
        let seen = Arc::new(Mutex::new(Vec::new()));
        bus.add_sink(Record(seen.clone()));
        let origin = Origin {
            name: "ann".into(),
            ..Origin::default()
        };
        bus.publish(&origin, vec![Change::one(Entity::Product, "update", "p1")])
            .await;
        assert_eq!(seen.lock().len(), 1);
        let batch = bus.activity().next_batch(Duration::from_secs(1), 10).await;
        assert_eq!(batch.len(), 1);
        assert_eq!(
            (batch[0].actor_name.as_str(), batch[0].entity_id.as_deref()),
            ("ann", Some("p1"))
        );
        assert!(matches!(
            sub.recv().await,
            Some(crate::events::Delivery::Event(_))
        ));
        // a full queue drops and counts, never waits
        for i in 0..5 {
            bus.publish(&origin, vec![Change::one(Entity::Brand, "create", i)])
                .await;
        }
        assert_eq!(bus.activity().dropped(), 3);
    }
}
