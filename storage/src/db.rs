//! One pool per logical database, on SQLite or PostgreSQL.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pm_config::{Database, DatabaseLocation, PerDatabase, Settings};
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};

use crate::StoreError;

/// Which engine a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Pool occupancy, for `/metrics` and `/admin`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PoolStats {
    /// Steady size from the settings (seed values).
    pub configured: u32,
    /// Ceiling: size plus overflow.
    pub max: u32,
    /// Open connections.
    pub open: u32,
    pub idle: u32,
    /// Callers waiting for a connection right now.
    pub waiting: usize,
}

/// One logical database: its pool and what is needed to report on it.
#[derive(Debug, Clone)]
pub struct Db {
    pub database: Database,
    pub pool: Pool,
    configured: u32,
    max: u32,
    waiting: Arc<AtomicUsize>,
}

/// Runs `$body` with `$conn` bound to a connection of `$db`, whichever the backend. The body
/// is compiled once per backend, so the same query text serves both (`$1`-style placeholders
/// work on SQLite and PostgreSQL alike).
#[macro_export]
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {
        match &$db.pool {
            $crate::Pool::Sqlite(p) => {
                let mut $conn = $db.acquire(p).await?;
                $body
            }
            $crate::Pool::Postgres(p) => {
                let mut $conn = $db.acquire(p).await?;
                $body
            }
        }
    };
}

impl Db {
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Takes a connection, counting the wait so that pool pressure is visible.
    pub async fn acquire<DB: sqlx::Database>(
        &self,
        pool: &sqlx::Pool<DB>,
    ) -> Result<PoolConnection<DB>, StoreError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let conn = pool.acquire().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        Ok(conn?)
    }

    /// Round trip to the database; returns its latency.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        with_conn!(self, |conn| conn.ping().await?);
        Ok(started.elapsed())
    }

    pub fn stats(&self) -> PoolStats {
        let (open, idle) = match &self.pool {
            Pool::Sqlite(p) => (p.size(), p.num_idle()),
            Pool::Postgres(p) => (p.size(), p.num_idle()),
        };
        PoolStats {
            configured: self.configured,
            max: self.max,
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// Queries that may run at once: the pool's ceiling.
    pub fn max_connections(&self) -> u32 {
        self.max
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Connects (creating the database if it is missing) and applies its migrations.
    pub async fn open(settings: &Settings, database: Database) -> Result<Self, StoreError> {
        let d = &settings.database;
        let configured = *d.pools.get(database);
        let max = configured + d.max_overflow;
        let pool = match settings.database_location(database) {
            DatabaseLocation::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    private_dir(dir).map_err(sqlx::Error::Io)?;
                }
                private_file(&path).map_err(sqlx::Error::Io)?;
                let opts = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_millis(d.sqlite_busy_timeout_ms))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(d.pool_timeout())
                    .max_lifetime(Duration::from_secs(d.pool_recycle_secs))
                    .idle_timeout(Duration::from_secs(d.idle_timeout_secs))
                    .test_before_acquire(d.pool_pre_ping)
                    .connect_with(opts)
                    .await?;
                Pool::Sqlite(pool)
            }
            DatabaseLocation::Postgres { url, create } => {
                // `sslmode` in the URL may ask for TLS: rustls on ring (see `crate::tls`).
                crate::tls::init();
                // NOTICEs ("relation _sqlx_migrations already exists, skipping") are noise in
                // the logs; warnings and errors still come through.
                let opts =
                    PgConnectOptions::from_str(url.expose())?.options([("client_min_messages", "warning")]);
                if let Some(name) = create {
                    create_database(&opts, &name).await?;
                }
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .min_connections(0)
                    .acquire_timeout(d.pool_timeout())
                    .max_lifetime(Duration::from_secs(d.pool_recycle_secs))
                    .idle_timeout(Duration::from_secs(d.idle_timeout_secs))
                    .test_before_acquire(d.pool_pre_ping)
                    .connect_with(opts)
                    .await?;
                Pool::Postgres(pool)
            }
        };
        let db = Self {
            database,
            pool,
            configured,
            max,
            waiting: Arc::default(),
        };
        db.check_schema().await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Refuses a physical database that already holds another logical database's schema.
    async fn check_schema(&self) -> Result<(), StoreError> {
        let q = "SELECT name FROM schema_info";
        let found: Option<String> = with_conn!(self, |conn| {
            sqlx::query_scalar(q)
                .fetch_optional(&mut *conn)
                .await
                .ok()
                .flatten()
        });
        match found {
            Some(name) if name != self.database.as_str() => Err(StoreError::WrongDatabase {
                database: self.database.to_string(),
                found: name,
            }),
            _ => Ok(()),
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        let err = |source| StoreError::Migrate {
            database: self.database.to_string(),
            source,
        };
        match &self.pool {
            Pool::Sqlite(p) => crate::db::migrator(Backend::Sqlite, self.database)
                .run(p)
                .await
                .map_err(err),
            Pool::Postgres(p) => crate::db::migrator(Backend::Postgres, self.database)
                .run(p)
                .await
                .map_err(err),
        }
    }
}

/// The data directory: created if missing, readable by the service's user only (0700): it
/// holds the databases, the JWT key and the first admin password.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// A SQLite database file, created 0600 before SQLite opens it (SQLite gives its `-wal` and
/// `-shm` files the same mode): password and key hashes are not for other local users.
fn private_file(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates `name` on the server of `opts` unless it exists. Two instances starting at once may
/// both try; the loser's "already exists" is fine.
async fn create_database(opts: &PgConnectOptions, name: &str) -> Result<(), StoreError> {
    let mut conn = opts.clone().database("postgres").connect().await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&sql).execute(&mut conn).await {
            Ok(_) => tracing::info!(database = name, "created database"),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await?;
    Ok(())
}

static SQLITE: PerDatabase<sqlx::migrate::Migrator> = PerDatabase {
    core: sqlx::migrate!("../migrations/sqlite/core"),
    catalog: sqlx::migrate!("../migrations/sqlite/catalog"),
    imports: sqlx::migrate!("../migrations/sqlite/imports"),
    exports: sqlx::migrate!("../migrations/sqlite/exports"),
    media: sqlx::migrate!("../migrations/sqlite/media"),
    code2asin: sqlx::migrate!("../migrations/sqlite/code2asin"),
    analytics: sqlx::migrate!("../migrations/sqlite/analytics"),
};

static POSTGRES: PerDatabase<sqlx::migrate::Migrator> = PerDatabase {
    core: sqlx::migrate!("../migrations/postgres/core"),
    catalog: sqlx::migrate!("../migrations/postgres/catalog"),
    imports: sqlx::migrate!("../migrations/postgres/imports"),
    exports: sqlx::migrate!("../migrations/postgres/exports"),
    media: sqlx::migrate!("../migrations/postgres/media"),
    code2asin: sqlx::migrate!("../migrations/postgres/code2asin"),
    analytics: sqlx::migrate!("../migrations/postgres/analytics"),
};

/// The migration track of one database on one backend.
pub fn migrator(backend: Backend, database: Database) -> &'static sqlx::migrate::Migrator {
    match backend {
        Backend::Sqlite => SQLITE.get(database),
        Backend::Postgres => POSTGRES.get(database),
    }
}

/// The seven databases of one application.
#[derive(Debug, Clone)]
pub struct Databases {
    pub dbs: PerDatabase<Db>,
}

impl Databases {
    /// Opens and migrates all seven, concurrently.
    pub async fn open(settings: &Settings) -> Result<Self, StoreError> {
        let (core, catalog, imports, exports, media, code2asin, analytics) = tokio::try_join!(
            Db::open(settings, Database::Core),
            Db::open(settings, Database::Catalog),
            Db::open(settings, Database::Imports),
            Db::open(settings, Database::Exports),
            Db::open(settings, Database::Media),
            Db::open(settings, Database::Code2asin),
            Db::open(settings, Database::Analytics),
        )?;
        Ok(Self {
            dbs: PerDatabase {
                core,
                catalog,
                imports,
                exports,
                media,
                code2asin,
                analytics,
            },
        })
    }

    pub fn get(&self, db: Database) -> &Db {
        self.dbs.get(db)
    }

    pub async fn close(&self) {
        for (_, db) in self.dbs.iter() {
            db.close().await;
        }
    }
}

// ---- serialised writes -----------------------------------------------------------------

/// A transaction that holds the write lock for `key` from its first statement, for
/// read-check-write sequences (history on change, cycle checks, path rewrites) that must not
/// interleave. SQLite: `BEGIN IMMEDIATE` takes the database's write lock up front (a deferred
/// transaction that reads and then writes fails with `SQLITE_BUSY` instead of waiting).
/// PostgreSQL: a transaction-scoped advisory lock on a hash of `key`, so writers of other
/// keys go on in parallel.
pub(crate) trait BeginLocked {
    type Db: sqlx::Database;
    async fn begin_locked(&mut self, key: &str) -> Result<sqlx::Transaction<'_, Self::Db>, StoreError>;

    /// [`BeginLocked::begin_locked`]'s lock in shared mode: holders of the shared lock run
    /// together, and exclude (and wait for) a holder of the exclusive one. On SQLite the same
    /// `BEGIN IMMEDIATE` (one writer at a time anyway).
    async fn begin_shared(&mut self, key: &str) -> Result<sqlx::Transaction<'_, Self::Db>, StoreError>;

    /// A write transaction: on SQLite `BEGIN IMMEDIATE`, so that concurrent writers wait for
    /// the write lock (up to `database.sqlite_busy_timeout_ms`) instead of failing with
    /// "database is locked" when a deferred transaction that has read tries to write; on
    /// PostgreSQL a plain `BEGIN` (row locks do the rest).
    async fn begin_write(&mut self) -> Result<sqlx::Transaction<'_, Self::Db>, StoreError>;
}

impl BeginLocked for PoolConnection<sqlx::Sqlite> {
    type Db = sqlx::Sqlite;
    async fn begin_locked(&mut self, _key: &str) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StoreError> {
        Ok((**self).begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn begin_shared(&mut self, _key: &str) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StoreError> {
        Ok((**self).begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn begin_write(&mut self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StoreError> {
        Ok((**self).begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// A transaction whose first statement takes the transaction-scoped advisory lock `function`
/// (exclusive or shared) on a hash of `key`.
async fn begin_with_advisory_lock<'c>(
    conn: &'c mut PoolConnection<sqlx::Postgres>,
    function: &str,
    key: &str,
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, StoreError> {
    let mut tx = (**conn).begin().await?;
    sqlx::query(&format!("SELECT {function}(hashtextextended($1, 0))"))
        .bind(key)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

impl BeginLocked for PoolConnection<sqlx::Postgres> {
    type Db = sqlx::Postgres;
    async fn begin_locked(&mut self, key: &str) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        begin_with_advisory_lock(self, "pg_advisory_xact_lock", key).await
    }

    async fn begin_shared(&mut self, key: &str) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        begin_with_advisory_lock(self, "pg_advisory_xact_lock_shared", key).await
    }

    async fn begin_write(&mut self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        Ok((**self).begin().await?)
    }
}
