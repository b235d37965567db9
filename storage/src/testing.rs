//! Test settings: a fresh set of databases per test, on SQLite always and on PostgreSQL when
//! `PM_TEST_DATABASE_URL` is set.

use std::path::PathBuf;

use pm_config::{Database, Secret, Settings};

pub struct TestEnv {
    pub settings: Settings,
    pub label: &'static str,
    pg: Option<(String, String)>,
}

fn base() -> (Settings, PathBuf) {
    let mut settings = pm_config::load_from(None, Vec::new()).unwrap().settings;
    let dir = std::env::temp_dir().join(format!("pm-storage-test-{}", uuid::Uuid::new_v4().simple()));
    settings.storage.data_dir = dir.clone();
    for db in Database::ALL {
        *settings.database.pools.get_mut(db) = 2;
    }
    settings.database.max_overflow = 0;
    settings.database.pool_timeout_secs = 10;
    (settings, dir)
}

/// One environment per backend available to this run.
pub fn backends() -> Vec<TestEnv> {
    let (sqlite, _) = base();
    let mut out = vec![TestEnv {
        settings: sqlite,
        label: "sqlite",
        pg: None,
    }];
    if let Some(url) = pm_config::testenv::test_server("PM_TEST_DATABASE_URL") {
        let (mut pg, _) = base();
        let prefix = format!("pmt_{}_", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        pg.database.url = Some(Secret::new(url.clone()));
        pg.database.name_prefix = prefix.clone();
        out.push(TestEnv {
            settings: pg,
            label: "postgres",
            pg: Some((url, prefix)),
        });
    }
    out
}

impl TestEnv {
    /// Drops the test's PostgreSQL databases and SQLite files.
    pub async fn cleanup(self) {
        if let Some((url, prefix)) = self.pg {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                for db in Database::ALL {
                    let sql = format!("DROP DATABASE IF EXISTS \"{prefix}{db}\" WITH (FORCE)");
                    let _ = sqlx::query(&sql).execute(&mut conn).await;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.settings.storage.data_dir);
    }
}
