//! Imports that stop part-way: a cancelled import keeps the batches it committed, and an import
//! whose process is killed is taken over once its lease expires and finishes exactly once.
//! (The XLSX upload is in `imports.rs`.)

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pm_config::Database;
use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app_with, test_settings, ADMIN_PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_products-manager");
/// Rows per import batch, each batch one transaction (`pm_actors::jobs::import::BATCH`).
const BATCH: i64 = 1000;

/// `payload` (12 digits) with its GS1 check digit.
fn with_check_digit(payload: &str) -> String {
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{payload}{}", (10 - sum % 10) % 10)
}

/// The EAN-13 of generated row `i`.
fn ean(i: u64) -> String {
    with_check_digit(&format!("40{i:010}"))
}

/// A `;` CSV of `rows` products with distinct valid EANs, decimal-comma prices and stocks.
fn generated_csv(rows: u64) -> Vec<u8> {
    use std::fmt::Write as _;
    assert_eq!(with_check_digit("400638133393"), "4006381333931");
    let mut s = String::with_capacity(rows as usize * 40 + 32);
    s.push_str("ean;title;price;stock\n");
    for i in 0..rows {
        let _ = writeln!(
            s,
            "{};Produit {i};{},{:02};{}",
            ean(i),
            1 + i % 97,
            i % 100,
            i % 50
        );
    }
    s.into_bytes()
}

/// Uploads `body` as `name` for `supplier` on the service at `base`; the job's API path.
async fn upload(client: &reqwest::Client, base: &str, supplier: &str, name: &str, body: Vec<u8>) -> String {
    upload_with(client, base, supplier, name, body, "").await
}

/// [`upload`] with the upload's options (`query`: `""` or `?max_errors=2`, ...).
async fn upload_with(
    client: &reqwest::Client,
    base: &str,
    supplier: &str,
    name: &str,
    body: Vec<u8>,
    query: &str,
) -> String {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(body).file_name(name.to_owned()),
    );
    let r = client
        .post(format!("{base}/api/v1/suppliers/{supplier}/imports{query}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    format!("{base}/api/v1/imports/jobs/{}", job["id"].as_str().unwrap())
}

/// Polls the job at `url` every 50 ms until `cond` holds; panics after `secs` seconds.
async fn wait_job(client: &reqwest::Client, url: &str, secs: u64, cond: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut last = Value::Null;
    while Instant::now() < until {
        if let Ok(r) = client.get(url).send().await {
            last = r.json().await.unwrap_or_default();
            if cond(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the job did not reach the state within {secs}s: {last}");
}

fn rows_read(job: &Value) -> u64 {
    job["progress"]["counters"]["rows_read"].as_u64().unwrap_or(0)
}

/// Live products in the catalog, and their distinct EANs (exact, unlike the API's `total`,
/// which PostgreSQL estimates beyond 10,000).
async fn live_products(db: &pm_storage::Db) -> (i64, i64) {
    let q = "SELECT COUNT(*), COUNT(DISTINCT ean) FROM products WHERE deleted_at IS NULL";
    match &db.pool {
        pm_storage::Pool::Sqlite(p) => sqlx::query_as(q).fetch_one(p).await.unwrap(),
        pm_storage::Pool::Postgres(p) => sqlx::query_as(q).fetch_one(p).await.unwrap(),
    }
}

async fn create_supplier(client: &reqwest::Client, base: &str, code: &str) -> String {
    let r = client
        .post(format!("{base}/api/v1/suppliers"))
        .json(&json!({"code": code, "name": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    s["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn cancelling_a_running_import_stops_it_and_keeps_what_was_written() {
    const ROWS: u64 = 60_000;
    let body = generated_csv(ROWS);
    for backend in backends() {
        // A 3 s lease: renewed (progress stored, cancellation learnt) every second.
        let app = spawn_app_with(backend, |s| s.jobs.lease_secs = 3).await;
        let base = app.url("");
        let supplier = create_supplier(&app.client, &base, "cancel").await;
        let job = upload(&app.client, &base, &supplier, "big.csv", body.clone()).await;
        let running = wait_job(&app.client, &job, 90, |j| {
            j["status"] == "running" && rows_read(j) > 0
        })
        .await;
        let r = app.client.post(format!("{job}/cancel")).send().await.unwrap();
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap_or_default();
        assert_eq!(
            status, 202,
            "{backend:?}: a running import is told to stop (409: it ended first, the file is too small): {answer}"
        );
        let cancelled = wait_job(&app.client, &job, 60, |j| {
            matches!(j["status"].as_str(), Some("cancelled" | "succeeded" | "failed"))
        })
        .await;
        assert_eq!(cancelled["status"], "cancelled", "{backend:?}: {cancelled}");
        assert_eq!(cancelled["import_status"], "cancelled", "{cancelled}");

        let db = app.db(Database::Catalog).await;
        let (products, eans) = live_products(&db).await;
        db.close().await;
        // Whole batches (one transaction each): at least those committed before the cancel
        // was asked for, and not the whole file.
        assert_eq!(products % BATCH, 0, "{backend:?}: {products} products");
        assert_eq!(eans, products, "{backend:?}");
        let (_, page) = app.get("/api/v1/products?count=true&limit=1").await;
        if page["total_exact"] == true {
            assert_eq!(page["total"].as_i64(), Some(products), "{backend:?}: {page}");
        }
        assert!(
            products >= rows_read(&running) as i64 && products < ROWS as i64,
            "{backend:?}: {products} products, {} rows read when cancelled",
            rows_read(&running)
        );
        // Its counters say what it wrote, the last batch included.
        assert_eq!(
            cancelled["progress"]["counters"]["created"].as_i64(),
            Some(products),
            "{backend:?}: {cancelled}"
        );
        app.stop().await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary as a child process, killed (SIGKILL) and reaped when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on `settings`' data directory (and PostgreSQL databases, `pg_prefix`)
/// with a 5 s job lease (renewed every 1.7 s); waits for `/health`.
async fn start(settings: &pm_config::Settings, pg_prefix: Option<&str>, port: u16) -> Service {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(prefix) = pg_prefix {
        cmd.env(
            "PM__DATABASE__URL",
            std::env::var("PM_TEST_DATABASE_URL").unwrap(),
        )
        .env("PM__DATABASE__NAME_PREFIX", prefix);
    }
    let child = cmd
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PM__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("PM__STORAGE__DATA_DIR", &settings.storage.data_dir)
        .env("PM__AUTH__BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("PM__AUTH__JWT_SECRET", "jwt-secret-for-the-import-kill-test")
        .env("PM__JOBS__LEASE_SECS", "5")
        .env("PM__JOBS__POLL_INTERVAL_MS", "50")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let service = Service(child);
    let client = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let up = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if up {
            return service;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no /health within 60s");
}

/// A client that sends the admin's access token.
async fn admin_client(base: &str) -> reqwest::Client {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["access_token"].as_str().unwrap();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

#[tokio::test]
async fn an_import_killed_mid_file_is_taken_over_and_finishes_exactly_once() {
    const ROWS: u64 = 20_000;
    let body = generated_csv(ROWS);
    for backend in backends() {
        let (settings, pg_prefix) = test_settings(backend);
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let first = start(&settings, pg_prefix.as_deref(), port).await;
        let client = admin_client(&base).await;
        let supplier = create_supplier(&client, &base, "killed").await;
        let job = upload(&client, &base, &supplier, "big.csv", body.clone()).await;
        // Running, with batches committed and its progress stored at a lease renewal.
        let running = wait_job(&client, &job, 90, |j| {
            j["status"] == "running" && rows_read(j) > 0
        })
        .await;
        assert!(rows_read(&running) < ROWS, "{backend:?}: {running}");
        // SIGKILL; then, on a new port, the job is claimed again once its lease expired.
        drop(first);
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let job = format!("{base}/api/v1/imports/jobs/{}", running["id"].as_str().unwrap());
        let second = start(&settings, pg_prefix.as_deref(), port).await;
        let client = admin_client(&base).await;
        let done = wait_job(&client, &job, 120, |j| {
            matches!(j["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
        })
        .await;
        assert_eq!(done["status"], "succeeded", "{backend:?}: {done}");
        // The killed attempt and the one that took over.
        assert_eq!(done["attempts"], 2, "{backend:?}: {done}");
        let c = &done["result"]["counters"];
        let n = |k: &str| c[k].as_u64().unwrap_or(0);
        assert_eq!((n("rows_read"), n("rejected")), (ROWS, 0), "{backend:?}: {c}");
        // The rows committed before the kill are found unchanged; the rest is created.
        assert_eq!(n("created") + n("unchanged"), ROWS, "{backend:?}: {c}");
        assert!(n("unchanged") >= rows_read(&running), "{backend:?}: {c}");
        assert_eq!(n("updated"), 0, "{backend:?}: {c}");

        let db = pm_storage::Db::open(&settings, Database::Catalog).await.unwrap();
        let (products, eans) = live_products(&db).await;
        db.close().await;
        assert_eq!((products, eans), (ROWS as i64, ROWS as i64), "{backend:?}");
        for i in [
            0,
            rows_read(&running) - 1,
            rows_read(&running),
            ROWS / 2,
            ROWS - 1,
        ] {
            let e = ean(i);
            let hits: Value = client
                .get(format!("{base}/api/v1/products/search?q={e}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let found: Vec<&Value> = hits["items"]
                .as_array()
                .map(|a| a.iter().map(|h| &h["product"]["ean"]).collect())
                .unwrap_or_default();
            assert_eq!(found, [&json!(e)], "{backend:?}: {hits}");
        }

        drop(second);
        if let Some(prefix) = &pg_prefix {
            drop_pg(prefix).await;
        }
        let _ = std::fs::remove_dir_all(&settings.storage.data_dir);
    }
}

/// Drops the databases of a test's prefix on the PostgreSQL server.
async fn drop_pg(prefix: &str) {
    use sqlx::Connection;
    let url = std::env::var("PM_TEST_DATABASE_URL").unwrap();
    if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
        for db in Database::ALL {
            let sql = format!("DROP DATABASE IF EXISTS \"{prefix}{db}\" WITH (FORCE)");
            let _ = sqlx::query(&sql).execute(&mut conn).await;
        }
    }
}

/// The error policy (`max_errors`) stops the import at the batch that goes over it; batches
/// already on their way to the catalog land, and the job's counters say what it wrote.
#[tokio::test]
async fn the_error_policy_stops_an_import_and_its_counters_say_what_it_wrote() {
    const ROWS: u64 = 6_000;
    let mut lines: Vec<String> = String::from_utf8(generated_csv(ROWS))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // Three rows of the first batch with a wrong check digit (line n + 1 holds row n).
    for row in [10usize, 20, 30] {
        let bad = lines[row + 1].replacen(&ean(row as u64)[..12], &format!("{}x", &ean(row as u64)[..11]), 1);
        lines[row + 1] = bad;
    }
    let body = (lines.join("\n") + "\n").into_bytes();
    for backend in backends() {
        let app = spawn_app_with(backend, |_| {}).await;
        let base = app.url("");
        let supplier = create_supplier(&app.client, &base, "strict").await;
        let job = upload_with(
            &app.client,
            &base,
            &supplier,
            "strict.csv",
            body.clone(),
            "?max_errors=2",
        )
        .await;
        let ended = wait_job(&app.client, &job, 90, |j| {
            matches!(j["status"].as_str(), Some("cancelled" | "succeeded" | "failed"))
        })
        .await;
        assert_eq!(ended["status"], "failed", "{backend:?}: {ended}");
        assert!(
            ended["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("stopped after 3 rejected rows"),
            "{backend:?}: {ended}"
        );
        let db = app.db(Database::Catalog).await;
        let (products, _) = live_products(&db).await;
        db.close().await;
        let c = &ended["progress"]["counters"];
        assert_eq!(c["created"].as_i64(), Some(products), "{backend:?}: {ended}");
        assert_eq!(c["rejected"].as_i64(), Some(3), "{backend:?}: {ended}");
        // Whole batches, the first with its three rejects, and not the whole file.
        assert_eq!(products % BATCH, BATCH - 3, "{backend:?}: {products} products");
        assert!(products < ROWS as i64 - 3, "{backend:?}: {products} products");
        app.stop().await;
    }
}
