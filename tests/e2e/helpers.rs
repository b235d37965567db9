//! `spawn_app`: one application per test, with its own databases.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pm_config::{Database, Secret, Settings};
use products_manager::Outcome;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL when `PM_TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    if pm_config::testenv::test_server("PM_TEST_DATABASE_URL").is_some() {
        out.push(Backend::Postgres);
    }
    out
}

/// Password of the `admin` user every test app starts with.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub struct TestApp {
    pub addr: SocketAddr,
    /// Sends the admin's access token with every request.
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anon: reqwest::Client,
    pub settings: Settings,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<Outcome>>>,
    pg_prefix: Option<String>,
}

/// Test defaults: small pools, a private data directory, quiet logs.
pub fn test_settings(backend: Backend) -> (Settings, Option<String>) {
    let mut s = pm_config::load_from(None, Vec::new()).unwrap().settings;
    let id = uuid::Uuid::new_v4().simple().to_string();
    s.storage.data_dir = std::env::temp_dir().join(format!("pm-e2e-{id}"));
    for db in Database::ALL {
        *s.database.pools.get_mut(db) = 2;
    }
    s.database.max_overflow = 1;
    s.server.shutdown_grace_secs = 5;
    s.object_store.link_secret = Some(Secret::new("test-link-secret"));
    s.auth.bootstrap_admin_password = Some(Secret::new(ADMIN_PASSWORD));
    s.auth.jwt_secret = Some(Secret::new(format!("jwt-{id}")));
    let mut prefix = None;
    if backend == Backend::Postgres {
        let p = format!("pme_{}_", &id[..12]);
        s.database.url = Some(Secret::new(std::env::var("PM_TEST_DATABASE_URL").unwrap()));
        s.database.name_prefix = p.clone();
        prefix = Some(p);
    }
    (s, prefix)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the application on its own thread (its own actix system and runtime, as in `main`)
/// and waits until it serves.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, pg_prefix) = test_settings(backend);
    tweak(&mut settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let run_settings = settings.clone();
    let thread = std::thread::spawn(move || {
        products_manager::block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            ready_tx.send(listener.local_addr()?)?;
            products_manager::run(run_settings, listener, async {
                let _ = stopped.await;
            })
            .await
        })
    });
    let addr = ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the app binds");
    let mut app = TestApp {
        addr,
        client: reqwest::Client::new(),
        anon: reqwest::Client::new(),
        settings,
        stop: Some(stop),
        thread: Some(thread),
        pg_prefix,
    };
    let ready = app.wait_for("/health", |s, _| s == 200).await;
    assert!(ready, "the app did not become healthy");
    let password = match &app.settings.auth.bootstrap_admin_password {
        Some(p) => p.expose().to_owned(),
        None => {
            std::fs::read_to_string(app.settings.storage.data_dir.join("initial-admin-password")).unwrap()
        }
    };
    let token = app.login("admin", &password).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.client = app.client_with_token(&token);
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Logs in; panics unless it succeeds. Returns the token pair.
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let r = self
            .anon
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login of {username}");
        r.json().await.unwrap()
    }

    /// The password of the users the tests create with [`TestApp::user`].
    pub const USER_PASSWORD: &'static str = "long enough pw";

    /// Creates a user with `roles` through the API and logs them in: their id and token pair.
    pub async fn user(&self, name: &str, roles: &[&str]) -> (String, Value) {
        let (st, u) = self
            .post(
                "/api/v1/users",
                serde_json::json!({"username": name, "password": Self::USER_PASSWORD, "roles": roles}),
            )
            .await;
        assert_eq!(st, 201, "{u}");
        let tokens = self.login(name, Self::USER_PASSWORD).await;
        (u["id"].as_str().unwrap().to_owned(), tokens)
    }

    /// Creates a user with `roles` and returns a client logged in as them.
    pub async fn user_client(&self, name: &str, roles: &[&str]) -> reqwest::Client {
        let (_, tokens) = self.user(name, roles).await;
        self.client_with_token(tokens["access_token"].as_str().unwrap())
    }

    /// A client that sends `Authorization: Bearer <token>`.
    pub fn client_with_token(&self, token: &str) -> reqwest::Client {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        reqwest::Client::builder().default_headers(h).build().unwrap()
    }

    /// A second pool on one of the app's databases, for checks and set-ups the API does not offer.
    pub async fn db(&self, db: Database) -> pm_storage::Db {
        pm_storage::Db::open(&self.settings, db).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.post(self.url(path)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .patch(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn actor(&self, name: &str) -> Value {
        self.get(&format!("/admin/actors/{name}")).await.1
    }

    /// Polls `path` until `cond(status, body)` holds; false after a 20 s deadline or if the app
    /// stops answering.
    pub async fn wait_for(&self, path: &str, mut cond: impl FnMut(u16, &Value) -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(r) = self.client.get(self.url(path)).send().await {
                let status = r.status().as_u16();
                let body = r.json().await.unwrap_or(Value::Null);
                if cond(status, &body) {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Asks the app to stop, waits for it, drops its databases; returns how it ended.
    pub async fn stop(mut self) -> Outcome {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let thread = self.thread.take().unwrap();
        let outcome = tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .expect("the app thread does not panic")
            .expect("the app runs");
        self.cleanup().await;
        outcome
    }

    /// Stops the app like [`TestApp::stop`] but keeps its databases and data directory, for a
    /// second app started on them (a restart).
    pub async fn stop_keeping_data(mut self) -> Outcome {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .expect("the app thread does not panic")
            .expect("the app runs")
    }

    async fn cleanup(&self) {
        if let Some(prefix) = &self.pg_prefix {
            use sqlx::Connection;
            let url = std::env::var("PM_TEST_DATABASE_URL").unwrap();
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
