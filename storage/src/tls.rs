//! The process's one TLS stack: rustls on ring, for PostgreSQL (`sslmode`), Redis (`rediss://`)
//! and S3 (HTTPS).
//!
//! rustls picks its crypto provider from its crate features when exactly one is compiled in; a
//! dependency that turned on a second one (aws-lc) would make that choice panic at the first
//! handshake. Installing ring explicitly, once, before any client is built, keeps the choice ours.

use std::sync::Once;

/// Installs ring as the process default crypto provider; idempotent, cheap after the first call.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first (by an embedding program): keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pm_config::testenv::test_server;
    use pm_config::{Database, Secret};

    #[test]
    fn installs_a_default_provider_once() {
        super::init();
        super::init();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    /// `PM_TEST_PG_TLS_URL` is a PostgreSQL server that accepts TLS connections only
    /// (`hostssl` in its pg_hba.conf), with a certificate for 127.0.0.1 and localhost signed by
    /// the CA in `PM_TEST_TLS_CA`; `.ci/run` starts one.
    #[tokio::test]
    async fn postgres_over_tls_verified_against_a_ca_file() {
        let (Some(url), Some(ca)) = (test_server("PM_TEST_PG_TLS_URL"), test_server("PM_TEST_TLS_CA")) else {
            return;
        };
        let url = url.trim_end_matches('/');
        let settings = |query: &str| {
            let mut s = pm_config::load_from(None, Vec::new()).unwrap().settings;
            s.storage.data_dir =
                std::env::temp_dir().join(format!("pm-tls-test-{}", uuid::Uuid::new_v4().simple()));
            s.database.url = Some(Secret::new(format!("{url}/postgres?{query}")));
            s.database.name_prefix = format!("pmtls_{}_", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            for db in Database::ALL {
                *s.database.pools.get_mut(db) = 1;
            }
            s.database.max_overflow = 0;
            s.database.pool_timeout_secs = 10;
            s
        };

        // verify-full with the CA: all seven databases open, migrate and answer, encrypted.
        let s = settings(&format!("sslmode=verify-full&sslrootcert={ca}"));
        let dbs = crate::db::Databases::open(&s)
            .await
            .expect("verify-full with the ca");
        for db in Database::ALL {
            dbs.get(db).ping().await.unwrap();
        }
        let crate::db::Pool::Postgres(pool) = &dbs.get(Database::Core).pool else {
            panic!("a postgres url opens postgres");
        };
        let encrypted: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(encrypted, "the session is encrypted");
        dbs.close().await;

        // require: encrypted without checking the certificate (a self-signed managed server).
        let r = settings("sslmode=require");
        let dbs_require = crate::db::Databases::open(&r).await.expect("sslmode=require");
        dbs_require.close().await;

        // verify-full without the CA: the system's roots do not know it, so it is refused.
        let e = crate::db::Databases::open(&settings("sslmode=verify-full"))
            .await
            .map(|_| ())
            .expect_err("an unknown issuer is refused");
        assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

        // The server refuses clear text: what opened above did go over TLS.
        let e = crate::db::Databases::open(&settings("sslmode=disable"))
            .await
            .map(|_| ())
            .expect_err("clear text is refused by this server");
        assert!(e.to_string().contains("no pg_hba.conf entry"), "{e}");

        // Clean up the databases the successful opens created.
        use sqlx::Connection;
        let admin = format!("{url}/postgres?sslmode=verify-full&sslrootcert={ca}");
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        for prefix in [&s.database.name_prefix, &r.database.name_prefix] {
            for db in Database::ALL {
                let sql = format!("DROP DATABASE IF EXISTS \"{prefix}{db}\" WITH (FORCE)");
                sqlx::query(&sql).execute(&mut conn).await.unwrap();
            }
        }
        for dir in [&s.storage.data_dir, &r.storage.data_dir] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// `PM_TEST_REDIS_TLS_URL` is a `rediss://` Redis with a certificate signed by the CA in
    /// `PM_TEST_TLS_CA`; `.ci/run` starts one.
    #[tokio::test]
    async fn redis_over_tls_verified_against_a_ca_file() {
        let (Some(url), Some(ca)) = (
            test_server("PM_TEST_REDIS_TLS_URL"),
            test_server("PM_TEST_TLS_CA"),
        ) else {
            return;
        };
        let timeout = Duration::from_secs(3);
        let client = crate::redis::client(&url, Some(ca.as_ref())).unwrap();
        let r = crate::redis::Redis::connect(client, timeout)
            .await
            .expect("rediss with the ca");
        r.ping(timeout).await.unwrap();

        // The system's roots do not know the test CA.
        let client = crate::redis::client(&url, None).unwrap();
        assert!(crate::redis::Redis::connect(client, timeout).await.is_err());

        // A CA file that is not PEM, or a CA file for a clear-text URL, is a configuration error.
        let bad = std::env::temp_dir().join(format!("pm-not-a-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&bad, "hello").unwrap();
        let e = crate::redis::client(&url, Some(&bad)).err().unwrap();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_file(&bad);
        let e = crate::redis::client("redis://127.0.0.1:6379", Some(ca.as_ref()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("not rediss://"), "{e}");
    }
}
