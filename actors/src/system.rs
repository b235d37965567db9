//! The supervision tree of the application.
//!
//! ```text
//! root (one_for_one)
//! ├── stores (one_for_one): store.core, store.catalog, store.catalog.bulk, store.imports,
//! │                         store.exports, store.media, store.code2asin, store.analytics
//! ├── changes (one_for_one): activity.writer
//! └── jobs (one_for_one)
//!     └── jobs.<queue> (one_for_one), for imports, exports, code2asin, media, catalog:
//!         jobs.<queue>.queue (the gate), jobs.<queue>.worker.1 … .<n>
//! ```
//!
//! A worker that crashes restarts alone (one_for_one): its job's lease expires and the job is
//! claimed again.
//!
//! Store actors are independent of each other, hence one_for_one. Both supervisors use the
//! restart intensity of the settings; when the root gives up, the callback given to
//! [`ActorSystem::start`] runs (the application turns health red and exits non-zero).

use std::sync::Arc;
use std::time::Duration;

use pm_config::{Database, PerDatabase, Settings};
use pm_storage::analytics::Analytics;
use pm_storage::catalog::Catalog;
use pm_storage::core::Core;
use pm_storage::{Databases, PoolStats};
use pm_supervisors::registry::RegistryError;
use pm_supervisors::{
    Behaviour, ChildSpec, Executor, Handles, Intensity, Mailbox, Registry, Strategy, Supervisor,
};

use crate::activity::ActivityWriter;
use crate::changes::{ActivityQueue, ChangeBus};
use crate::events::Hub;
use crate::jobs::worker::WorkerDeps;
use crate::jobs::{Enqueuer, JobGate, JobKinds, JobWorker, Wakeup};
use crate::store::analytics::AnalyticsStore;
use crate::store::catalog::CatalogStore;
use crate::store::core::CoreStore;
use crate::store::db::DbStore;
use crate::store::{Ping, StoreCallError};
use pm_storage::jobs::{JobQueue, Queue, RetryPolicy, SystemClock};

/// Mailboxes of the store actors.
#[derive(Clone, Debug)]
pub struct Stores {
    pub core: Mailbox<CoreStore>,
    /// The catalog's interactive lane: API reads and single writes.
    pub catalog: Mailbox<CatalogStore>,
    /// The catalog's bulk lane (`store.catalog.bulk`): bulk upserts and imports, with a
    /// mailbox and concurrency of their own, so that a long bulk load never takes the slots
    /// of interactive reads.
    pub catalog_bulk: Mailbox<CatalogStore>,
    pub imports: Mailbox<DbStore>,
    pub exports: Mailbox<DbStore>,
    pub media: Mailbox<DbStore>,
    pub code2asin: Mailbox<DbStore>,
    pub analytics: Mailbox<AnalyticsStore>,
}

impl Stores {
    /// Pings `db` through its store actor.
    pub async fn ping(&self, db: Database) -> Result<Duration, StoreCallError> {
        match db {
            Database::Core => self.core.send(Ping).await,
            Database::Catalog => self.catalog.send(Ping).await,
            Database::Imports => self.imports.send(Ping).await,
            Database::Exports => self.exports.send(Ping).await,
            Database::Media => self.media.send(Ping).await,
            Database::Code2asin => self.code2asin.send(Ping).await,
            Database::Analytics => self.analytics.send(Ping).await,
        }
    }
}

/// The gates of the five job queues.
#[derive(Clone)]
pub struct Jobs {
    gates: Vec<(Queue, Mailbox<JobGate>)>,
    /// Workers per queue on this instance.
    pub workers: Vec<(Queue, usize)>,
    /// The leases this instance's workers hold.
    pub held: crate::jobs::HeldLeases,
    pub kinds: JobKinds,
    /// Product images in: uploads and URLs (the media routes), and the media kinds.
    pub media: Arc<crate::media::MediaDeps>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").field("workers", &self.workers).finish()
    }
}

impl Jobs {
    pub fn gate(&self, queue: Queue) -> &Mailbox<JobGate> {
        &self
            .gates
            .iter()
            .find(|(q, _)| *q == queue)
            .expect("every queue has a gate")
            .1
    }
}

/// What the actors use besides the databases.
#[derive(Clone)]
pub struct Services {
    pub objects: Arc<dyn pm_storage::object_store::ObjectStore>,
    /// The two-level cache (Code2ASIN keeps Amazon's answers in it).
    pub cache: pm_storage::cache::Cache,
    /// Decrypts the secrets of stored accounts (Amazon).
    pub secrets: pm_storage::crypto::SecretCipher,
}

/// The running actors of one application.
#[derive(Clone)]
pub struct ActorSystem {
    pub registry: Registry,
    pub root: Supervisor,
    pub stores: Stores,
    pub jobs: Jobs,
    /// Live events by topic (jobs, catalog changes, notifications).
    pub hub: Hub,
    /// Where committed writes announce themselves (cache invalidation, activity log, events).
    pub changes: ChangeBus,
    /// Encrypts secrets before they are stored (Amazon accounts).
    pub secrets: pm_storage::crypto::SecretCipher,
    databases: Databases,
}

impl ActorSystem {
    /// Starts the tree. Must run inside the actix `System` on the tokio multi-thread runtime.
    pub fn start(
        settings: &Settings,
        databases: Databases,
        services: Services,
        on_escalate: impl FnOnce(String) + Send + 'static,
    ) -> Result<Self, RegistryError> {
        let a = &settings.actors;
        let intensity = Intensity {
            max_restarts: a.max_restarts,
            within: Duration::from_secs(a.restart_window_secs),
        };
        let registry = Registry::new();
        let exec = Executor::new(a.arbiters, a.blocking_threads);
        let root = Supervisor::root_on(
            "root",
            Strategy::OneForOne,
            intensity,
            registry.clone(),
            exec,
            on_escalate,
        );
        let hub = Hub::new();
        let bus = ChangeBus::new(ActivityQueue::new(a.activity_queue_capacity), hub.clone());
        let stores_sup = root.child_supervisor("stores", Strategy::OneForOne, intensity);
        let start = |db: Database| -> Result<Mailbox<DbStore>, RegistryError> {
            let pool = databases.get(db).clone();
            let concurrency = pool.max_connections() as usize;
            stores_sup.start(store_spec(settings, db, concurrency, move || {
                DbStore::new(pool.clone())
            }))
        };
        let catalog_db = databases.get(Database::Catalog).clone();
        let catalog = Catalog::new(catalog_db.clone());
        let bulk_catalog = catalog.clone();
        // The pool's connections are shared by the two lanes: the bulk lane gets its own
        // share, the interactive lane the rest (at least one).
        let catalog_max = catalog_db.max_connections() as usize;
        let catalog_bulk = a.bulk_concurrency.clamp(1, catalog_max.max(2) - 1);
        let catalog_interactive = (catalog_max - catalog_bulk).max(1);
        let with = |db: Database| {
            let d = databases.get(db).clone();
            (d.max_connections() as usize, d)
        };
        let (core_conc, core_db) = with(Database::Core);
        let core = Core::new(core_db);
        let (core_bus, catalog_bus, bulk_bus) = (bus.clone(), bus.clone(), bus.clone());
        let (analytics_conc, analytics_db) = with(Database::Analytics);
        let analytics = Analytics::new(analytics_db);
        let stores = Stores {
            core: stores_sup.start(store_spec(settings, Database::Core, core_conc, move || {
                CoreStore::new(core.clone(), core_bus.clone())
            }))?,
            catalog: stores_sup.start(store_spec(
                settings,
                Database::Catalog,
                catalog_interactive,
                move || CatalogStore::new(catalog.clone(), catalog_bus.clone()),
            ))?,
            catalog_bulk: {
                let spec = store_spec(settings, Database::Catalog, catalog_bulk, move || {
                    CatalogStore::new(bulk_catalog.clone(), bulk_bus.clone())
                });
                stores_sup.start(ChildSpec {
                    name: "store.catalog.bulk".into(),
                    capacity: settings.actors.bulk_mailbox_capacity,
                    ..spec
                })?
            },
            imports: start(Database::Imports)?,
            exports: start(Database::Exports)?,
            media: start(Database::Media)?,
            code2asin: start(Database::Code2asin)?,
            analytics: stores_sup.start(store_spec(
                settings,
                Database::Analytics,
                analytics_conc,
                move || AnalyticsStore::new(analytics.clone()),
            ))?,
        };
        let activity_sup = root.child_supervisor("changes", Strategy::OneForOne, intensity);
        {
            let (queue, analytics) = (bus.activity().clone(), stores.analytics.clone());
            activity_sup.start(
                ChildSpec::new("activity.writer", "activity_writer", move || {
                    ActivityWriter::new(queue.clone(), analytics.clone())
                })
                .capacity(16),
            )?;
        }
        let jobs = start_jobs(settings, &root, intensity, &databases, &stores, &hub, &services)?;
        Ok(Self {
            registry,
            root,
            stores,
            jobs,
            hub,
            changes: bus,
            secrets: services.secrets.clone(),
            databases,
        })
    }

    /// Pool occupancy per database, read without going through the actors so that it stays
    /// visible while they are saturated.
    pub fn pool_stats(&self) -> PerDatabase<PoolStats> {
        PerDatabase::from_fn(|db| self.databases.get(db).stats())
    }

    /// Stops taking work, waits up to `grace` for queued messages, stops the actors and closes
    /// the pools. Returns whether every mailbox drained in time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        let drained = self.registry.drain(grace).await;
        // Every write has answered: what they queued for the activity log is written now.
        let left = crate::activity::drain(self.changes.activity(), &self.stores.analytics).await;
        if left > 0 {
            tracing::info!(entries = left, "activity log drained at shutdown");
        }
        self.root.shutdown();
        // The workers are stopped (their runs dropped): their jobs go back to the queue now
        // rather than when their leases expire.
        let released = self.jobs.held.release_all().await;
        if released > 0 {
            tracing::info!(jobs = released, "running jobs handed back to their queues");
        }
        self.databases.close().await;
        drained
    }
}

/// The job kinds this build runs, by queue. Features register theirs here.
fn job_kinds(
    settings: &Settings,
    stores: &Stores,
    databases: &Databases,
    services: &Services,
    sup: &Supervisor,
    enqueuer_of: &dyn Fn(Queue) -> Enqueuer,
) -> (JobKinds, Arc<crate::media::MediaDeps>) {
    let objects = &services.objects;
    let mut kinds = JobKinds::default();
    let m = &settings.media;
    let media = Arc::new(crate::media::MediaDeps {
        store: pm_storage::media::Media::new(databases.get(Database::Media).clone()),
        objects: objects.clone(),
        bucket: settings.object_store.buckets.product_images.clone(),
        spec: crate::media::thumb_spec(m),
        limits: crate::media::limits(m.max_upload_bytes as u64, m.max_pixels),
        max_per_product: m.max_images_per_product,
        http: crate::outbound::client(
            Duration::from_secs(m.fetch_timeout_secs.clamp(1, 30)),
            m.fetch_private_addresses,
            "media.fetch_private_addresses",
        ),
        fetch_timeout: Duration::from_secs(m.fetch_timeout_secs.max(1)),
        private_ok: m.fetch_private_addresses,
        jobs: enqueuer_of(Queue::Media),
    });
    // One session per supplier with an import running: a dynamic child of `import.session`.
    let deps = Arc::new(crate::jobs::import::ImportDeps {
        catalog: stores.catalog_bulk.clone(),
        objects: objects.clone(),
        imports: pm_storage::imports::Imports::new(databases.get(Database::Imports).clone()),
        core: stores.core.clone(),
        media: media.clone(),
        http: crate::outbound::client(
            Duration::from_secs(settings.imports.fetch_timeout_secs.clamp(1, 30)),
            settings.imports.fetch_private_addresses,
            "imports.fetch_private_addresses",
        ),
        max_bytes: settings.imports.max_upload_bytes as u64,
        fetch_timeout: Duration::from_secs(settings.imports.fetch_timeout_secs.max(1)),
        batches_in_flight: settings.imports.batches_in_flight.unwrap_or(
            match databases.get(Database::Catalog).backend() {
                pm_storage::Backend::Postgres => 2,
                pm_storage::Backend::Sqlite => 1,
            },
        ),
    });
    let spec = pm_supervisors::DynamicSpec::new("import.session", "import_session", move |supplier: &str| {
        crate::jobs::session::ImportSession::new(supplier, deps.clone())
    })
    .max_children(settings.imports.max_sessions.max(1))
    .idle_after(Some(Duration::from_secs(
        settings.imports.session_idle_secs.max(1),
    )))
    .capacity(64);
    kinds.register(
        Queue::Imports,
        crate::jobs::import::KIND,
        crate::jobs::import::ImportFile {
            sessions: sup.dynamic(spec),
        },
    );
    kinds.register(
        Queue::Code2asin,
        crate::code2asin::job::KIND,
        crate::code2asin::job::ResolveEans(code2asin_deps(settings, stores, databases, services, sup)),
    );
    kinds.register(
        Queue::Media,
        crate::media::KIND,
        crate::media::MakeThumbnails(media.clone()),
    );
    kinds.register(
        Queue::Media,
        crate::media::thumbnails::REPROCESS_KIND,
        crate::media::ReprocessAll(media.clone()),
    );
    kinds.register(
        Queue::Media,
        crate::media::fetch::KIND,
        crate::media::fetch::FetchImages {
            media: media.clone(),
            imports: pm_storage::imports::Imports::new(databases.get(Database::Imports).clone()),
        },
    );
    if settings.jobs.debug_kinds {
        for q in Queue::ALL {
            kinds.register(q, crate::jobs::debug::KIND, crate::jobs::debug::DebugSleep);
        }
    }
    (kinds, media)
}

/// Code2ASIN's job kind: accounts, one resolver per account and marketplace (a dynamic child
/// of `code2asin.resolver`), the code2asin database, the catalog's bulk lane.
fn code2asin_deps(
    settings: &Settings,
    stores: &Stores,
    databases: &Databases,
    services: &Services,
    sup: &Supervisor,
) -> Arc<crate::code2asin::Code2asinDeps> {
    use crate::code2asin::{resolver, Accounts, Code2asinDeps};
    let c = &settings.code2asin;
    let store = pm_storage::code2asin::Code2asin::new(databases.get(Database::Code2asin).clone());
    let resolver_deps = Arc::new(resolver::ResolverDeps {
        cache: services.cache.clone(),
        store: store.clone(),
        ttl: Duration::from_secs(settings.cache.ttl.code2asin_mappings),
        window: Duration::from_millis(c.batch_window_ms),
        margin: c.rate_margin.clamp(0.1, 1.0),
        max_attempts: c.max_attempts.max(1),
        directory: parking_lot::Mutex::new(std::collections::HashMap::new()),
    });
    let factory_deps = resolver_deps.clone();
    let spec =
        pm_supervisors::DynamicSpec::new("code2asin.resolver", "code2asin_resolver", move |key: &str| {
            resolver::Resolver::new(key, factory_deps.clone())
        })
        .max_children(c.max_resolvers.max(1))
        .idle_after(Some(Duration::from_secs(c.resolver_idle_secs.max(1))))
        // A job's chunk of EANs asks the resolver once per EAN it has to request.
        .capacity(4096);
    Arc::new(Code2asinDeps {
        accounts: Accounts {
            settings: settings.amazon.clone(),
            core: Core::new(databases.get(Database::Core).clone()),
            cipher: services.secrets.clone(),
            http: crate::code2asin::http_client(&settings.amazon),
        },
        resolvers: sup.dynamic(spec),
        resolver_deps,
        store,
        catalog: stores.catalog_bulk.clone(),
        auto_apply_threshold: c.auto_apply_threshold,
        max_eans: c.max_eans_per_job.max(1),
    })
}

fn start_jobs(
    settings: &Settings,
    root: &Supervisor,
    intensity: Intensity,
    databases: &Databases,
    stores: &Stores,
    hub: &Hub,
    services: &Services,
) -> Result<Jobs, RegistryError> {
    let j = &settings.jobs;
    let a = &settings.actors;
    let policy = RetryPolicy {
        base: Duration::from_secs(j.retry_base_secs),
        factor: j.retry_factor,
        max_delay: Duration::from_secs(j.retry_max_delay_secs),
        max_attempts: j.max_attempts.max(1),
    };
    let sup = root.child_supervisor("jobs", Strategy::OneForOne, intensity);
    // Every queue's front first: job kinds that start other jobs hold them.
    let enqueuers: Vec<(Queue, Enqueuer)> = Queue::ALL
        .into_iter()
        .map(|q| {
            let db = databases.get(q.database()).clone();
            let queue = JobQueue::new(db, q, std::sync::Arc::new(SystemClock), policy);
            (q, Enqueuer::new(queue, hub.clone(), Wakeup::default()))
        })
        .collect();
    let enqueuer_of = |q: Queue| {
        enqueuers
            .iter()
            .find(|(k, _)| *k == q)
            .map(|(_, e)| e.clone())
            .expect("every queue has its enqueuer")
    };
    let (kinds, media) = job_kinds(settings, stores, databases, services, &sup, &enqueuer_of);
    let mut gates = Vec::new();
    let mut workers = Vec::new();
    let held = crate::jobs::HeldLeases::default();
    for (q, enqueuer) in enqueuers.iter().cloned() {
        let conc = (databases.get(q.database()).max_connections() as usize / 2).max(1);
        let (queue, wakeup) = (enqueuer.queue.clone(), enqueuer.wakeup.clone());
        let qsup = sup.child_supervisor(format!("jobs.{q}"), Strategy::OneForOne, intensity);
        let gate = {
            let kinds = kinds.clone();
            qsup.start(
                ChildSpec::new(format!("jobs.{q}.queue"), "job_queue", move || {
                    JobGate::new(enqueuer.clone(), kinds.clone())
                })
                .capacity(a.store_mailbox_capacity)
                .concurrency(conc)
                .send_timeout(a.send_timeout())
                .stuck_after(Duration::from_secs(a.stuck_after_secs))
                .stateless(),
            )?
        };
        let n = match q {
            Queue::Imports => j.workers.imports,
            Queue::Exports => j.workers.exports,
            Queue::Code2asin => j.workers.code2asin,
            Queue::Media => j.workers.media_count(),
            Queue::Catalog => j.workers.catalog,
        };
        let deps = WorkerDeps {
            queue,
            kinds: kinds.clone(),
            hub: hub.clone(),
            wakeup,
            lease: j.lease(),
            poll: j.poll_interval(),
            core: Some(stores.core.clone()),
            held: held.clone(),
        };
        for i in 1..=n {
            let deps = deps.clone();
            qsup.start(
                ChildSpec::new(format!("jobs.{q}.worker.{i}"), "job_worker", move || {
                    JobWorker::new(deps.clone())
                })
                .capacity(16)
                // A job runs for minutes: the worker's handlers are short, its job is not.
                .stuck_after(Duration::from_secs(a.stuck_after_secs)),
            )?;
        }
        gates.push((q, gate));
        workers.push((q, n));
    }
    Ok(Jobs {
        gates,
        workers,
        held,
        kinds,
        media,
    })
}

fn store_spec<B: Behaviour + Handles<Ping>>(
    settings: &Settings,
    db: Database,
    concurrency: usize,
    factory: impl Fn() -> B + Send + Sync + 'static,
) -> ChildSpec<B> {
    let a = &settings.actors;
    ChildSpec::new(format!("store.{db}"), "store", factory)
        .capacity(a.store_mailbox_capacity)
        .concurrency(concurrency)
        .send_timeout(a.send_timeout())
        .stuck_after(Duration::from_secs(a.stuck_after_secs))
        // Store actors hold no state but their pool: a panicking query fails alone.
        .stateless()
}
