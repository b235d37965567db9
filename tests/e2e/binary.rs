//! The binary as a newcomer runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_products-manager");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_run_command_serves_health_on_embedded_defaults_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("pm-bin-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PM__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("PM__STORAGE__DATA_DIR", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(30);
    let mut healthy = false;
    while Instant::now() < until && !healthy {
        healthy = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if !healthy {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(healthy, "no /health within 30s");
    assert!(dir.join("catalog.db").exists());
    signal(&child, "TERM");
    let exit = reap(child).await;
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_check_masks_secrets_and_warns_about_unknown_variables() {
    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("PM__DATABASE__URL", "postgres://pm:hunter2@db:5432")
        .env("PM__OBJECT_STORE__LINK_SECRET", "s3cr3t")
        .env("PM__DATABSE__URL", "typo")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stdout.contains("postgres://pm:********@db:5432"), "{stdout}");
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("s3cr3t"),
        "{stdout}"
    );
    assert!(stdout.contains("catalog = 20"), "{stdout}");
    assert!(stderr.contains("PM__DATABSE__URL"), "{stderr}");
}

#[test]
fn a_bad_setting_stops_the_start_with_a_message() {
    let out = Command::new(BIN)
        .env("PM__SERVER__BIND", "not an address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Named by the variable that set it, not by a source file of ours.
    assert!(stderr.contains("PM__SERVER__BIND"), "{stderr}");
    assert!(!stderr.contains("load.rs"), "{stderr}");
}

#[test]
fn migrate_creates_and_migrates_every_database_then_exits() {
    let dir = std::env::temp_dir().join(format!("pm-migrate-{}", uuid::Uuid::new_v4().simple()));
    for _ in 0..2 {
        let out = Command::new(BIN)
            .arg("migrate")
            .env("PM__STORAGE__DATA_DIR", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for db in [
        "core",
        "catalog",
        "imports",
        "exports",
        "media",
        "code2asin",
        "analytics",
    ] {
        assert!(dir.join(format!("{db}.db")).exists(), "{db}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts the binary on `dir` with the debug job kind and a 1 s lease; waits for `/health`.
async fn start_with_jobs(
    dir: &std::path::Path,
    port: u16,
    pg: Option<&(String, String)>,
) -> std::process::Child {
    start_with_jobs_lease(dir, port, 1, pg).await
}

/// `pg`: PostgreSQL server URL and database name prefix, or SQLite in `dir`.
async fn start_with_jobs_lease(
    dir: &std::path::Path,
    port: u16,
    lease_secs: u64,
    pg: Option<&(String, String)>,
) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some((url, prefix)) = pg {
        cmd.env("PM__DATABASE__URL", url)
            .env("PM__DATABASE__NAME_PREFIX", prefix);
    }
    let mut child = cmd
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PM__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("PM__STORAGE__DATA_DIR", dir)
        .env("PM__AUTH__BOOTSTRAP_ADMIN_PASSWORD", "admin-password-for-tests")
        .env("PM__AUTH__JWT_SECRET", "jwt-secret-for-the-sigkill-test")
        .env("PM__JOBS__DEBUG_KINDS", "true")
        .env("PM__JOBS__LEASE_SECS", lease_secs.to_string())
        .env("PM__JOBS__POLL_INTERVAL_MS", "50")
        .env("PM__JOBS__WORKERS__IMPORTS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        let up = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if up {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no /health within 30s");
}

/// Sends `signal` (`TERM`, `KILL`) to the service process.
fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal}");
}

/// Waits for the service process to exit, off the async workers.
async fn reap(mut child: std::process::Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap()
}

/// Enqueues a `debug.sleep` job on the imports queue; answers its URL.
async fn enqueue_sleep(client: &reqwest::Client, port: u16, token: &str, ms: u64, steps: u64) -> String {
    let job: serde_json::Value = client
        .post(format!("http://127.0.0.1:{port}/api/v1/jobs/imports"))
        .bearer_auth(token)
        .json(&serde_json::json!({"kind": "debug.sleep", "payload": {"ms": ms, "steps": steps}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    format!(
        "http://127.0.0.1:{port}/api/v1/jobs/imports/{}",
        job["id"].as_str().unwrap()
    )
}

/// Polls the job until `cond` holds (20 s deadline); returns it.
async fn wait_job(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(20);
    let mut last = serde_json::Value::Null;
    while Instant::now() < until {
        if let Ok(r) = client.get(url).bearer_auth(token).send().await {
            last = r.json().await.unwrap_or_default();
            if cond(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job never reached the state: {last}");
}

async fn admin_token(client: &reqwest::Client, port: u16) -> String {
    let r: serde_json::Value = client
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": "admin-password-for-tests"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

/// Drops the databases of a test's prefix on the PostgreSQL server.
async fn drop_pg(pg: &(String, String)) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg.0).await {
        for db in pm_config::Database::ALL {
            let sql = format!("DROP DATABASE IF EXISTS \"{}{db}\" WITH (FORCE)", pg.1);
            let _ = sqlx::query(&sql).execute(&mut conn).await;
        }
    }
}

#[tokio::test]
async fn a_job_of_a_process_killed_with_sigkill_is_taken_over_at_the_next_start_and_finishes_once() {
    let mut servers = vec![None];
    if let Some(url) = pm_config::testenv::test_server("PM_TEST_DATABASE_URL") {
        let prefix = format!("pmk_{}_", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        servers.push(Some((url, prefix)));
    }
    for pg in servers {
        sigkill_round(pg.as_ref()).await;
        if let Some(pg) = &pg {
            drop_pg(pg).await;
        }
    }
}

async fn sigkill_round(pg: Option<&(String, String)>) {
    let dir = std::env::temp_dir().join(format!("pm-bin-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let client = reqwest::Client::new();
    let first = start_with_jobs(&dir, port, pg).await;
    let token = admin_token(&client, port).await;
    let url = enqueue_sleep(&client, port, &token, 2000, 20).await;
    // running, with its progress stored at a lease renewal
    wait_job(&client, &url, &token, |j| {
        j["status"] == "running" && j["progress"]["done"].as_u64().is_some()
    })
    .await;
    signal(&first, "KILL");
    reap(first).await;
    let second = start_with_jobs(&dir, port, pg).await;
    let token = admin_token(&client, port).await;
    let done = wait_job(&client, &url, &token, |j| j["status"] == "succeeded").await;
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["result"]["attempt"], 2, "{done}");
    signal(&second, "TERM");
    reap(second).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_graceful_stop_hands_its_running_job_back_to_run_again_at_once() {
    let dir = std::env::temp_dir().join(format!("pm-bin-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let client = reqwest::Client::new();
    // A lease far longer than the test's deadlines: only the hand-back makes the job run again
    // in time.
    let first = start_with_jobs_lease(&dir, port, 300, None).await;
    let token = admin_token(&client, port).await;
    let url = enqueue_sleep(&client, port, &token, 1500, 15).await;
    wait_job(&client, &url, &token, |j| j["status"] == "running").await;
    signal(&first, "TERM");
    let exit = reap(first).await;
    assert!(exit.success(), "{exit:?}");
    let second = start_with_jobs_lease(&dir, port, 300, None).await;
    let token = admin_token(&client, port).await;
    let done = wait_job(&client, &url, &token, |j| j["status"] == "succeeded").await;
    // the interrupted attempt was not counted
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(done["result"]["attempt"], 1, "{done}");
    signal(&second, "TERM");
    reap(second).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn admin_commands_recover_access_from_the_shell() {
    let dir = std::env::temp_dir().join(format!("pm-bin-{}", uuid::Uuid::new_v4().simple()));
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PM__STORAGE__DATA_DIR", &dir)
            .env("PM__AUTH__BOOTSTRAP_ADMIN_PASSWORD", "the first admin password")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(s) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    assert!(run(&["migrate"], None).status.success());
    // No such user yet: a clear error.
    let out = run(
        &["admin", "reset-password", "nobody", "--password-stdin"],
        Some("a long new password\n"),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no user"),
        "{out:?}"
    );
    let out = run(&["admin", "create-admin", "rescue"], None);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let generated = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    let out = run(
        &["admin", "reset-password", "rescue", "--password-stdin"],
        Some("a long new password\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&generated));
    // The service starts on those databases and the new password logs in.
    let port = free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PM__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("PM__STORAGE__DATA_DIR", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    while Instant::now() < until {
        if let Ok(r) = client
            .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "rescue", "password": "a long new password"}))
            .send()
            .await
        {
            status = r.status().as_u16();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}
