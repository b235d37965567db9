//! Health endpoints and metrics.

use crate::helpers::{backends, spawn_app, spawn_app_with, Backend};

#[tokio::test]
async fn health_reports_every_database_and_the_actors() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (st, h) = app.get("/health").await;
        assert_eq!((st, h["status"].as_str()), (200, Some("ok")));
        let (st, db) = app.get("/health/db").await;
        assert_eq!(st, 200, "{db}");
        for name in [
            "core",
            "catalog",
            "imports",
            "exports",
            "media",
            "code2asin",
            "analytics",
        ] {
            assert_eq!(db["databases"][name]["status"], "ok", "{backend:?} {name}");
            assert!(db["databases"][name]["latency_ms"].as_f64().unwrap() >= 0.0);
        }
        let (st, a) = app.get("/health/actors").await;
        assert_eq!(st, 200);
        // 8 stores, 5 job gates, 13 job workers, the activity writer
        assert_eq!(a["actors"], 27);
        app.stop().await;
    }
}

#[tokio::test]
async fn redis_health_is_ok_failing_or_not_configured() {
    let app = spawn_app(Backend::Sqlite).await;
    let (st, r) = app.get("/health/redis").await;
    assert_eq!((st, r["status"].as_str()), (200, Some("not_configured")));
    app.stop().await;

    // Nothing listens on port 1: the app still starts, and health says redis fails.
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.cache.redis_url = Some(pm_config::Secret::new("redis://127.0.0.1:1"));
    })
    .await;
    let (st, r) = app.get("/health/redis").await;
    assert_eq!((st, r["status"].as_str()), (503, Some("error")), "{r}");
    app.stop().await;

    if let Some(url) = pm_config::testenv::test_server("PM_TEST_REDIS_URL") {
        let app = spawn_app_with(Backend::Sqlite, |s| {
            s.cache.redis_url = Some(pm_config::Secret::new(url))
        })
        .await;
        let (st, r) = app.get("/health/redis").await;
        assert_eq!((st, r["status"].as_str()), (200, Some("ok")), "{r}");
        app.stop().await;
    }
}

#[tokio::test]
async fn metrics_expose_requests_actors_and_pools() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, p) = app
        .post("/api/v1/products", serde_json::json!({"title": "m"}))
        .await;
    let id = p["id"].as_str().unwrap();
    let (st, _) = app.get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(st, 200);
    // A caller's error (an unknown id, a bad cursor) is refused, not an actor's failure.
    let (st, _) = app
        .get(&format!("/api/v1/products/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(st, 404);
    let (st, _) = app.get("/api/v1/products?cursor=garbage").await;
    assert_eq!(st, 422);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/products/{id}\",status=\"200\"",
        "pm_actor_mailbox_depth{actor=\"store.catalog\",kind=\"store\"} 0",
        "pm_actor_mailbox_capacity{actor=\"store.catalog\",kind=\"store\"} 1024",
        "pm_actor_failed_total{actor=\"store.catalog\",kind=\"store\"} 0",
        "pm_actor_refused_total{actor=\"store.catalog\",kind=\"store\"} 2",
        "pm_actor_panics_total{actor=\"store.core\",kind=\"store\"} 0",
        "pm_actor_restarts_total{actor=\"store.media\",kind=\"store\"} 0",
        "pm_db_pool_size{database=\"catalog\"}",
        "pm_db_pool_idle{database=\"analytics\"}",
        "pm_db_pool_waiting{database=\"core\"} 0",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // The create and the read (the purge task may have added its own message).
    let processed = |name: &str| -> u64 {
        let prefix = format!("{name}{{actor=\"store.catalog\",kind=\"store\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(processed("pm_actor_processed_total") >= 2, "{text}");
    assert!(processed("pm_actor_handling_seconds_count") >= 2, "{text}");
    app.stop().await;
}

/// `promtool check metrics` on a scrape: every metric described, named and typed as Prometheus
/// wants. Runs when `PM_TEST_PROMTOOL` names the binary (CI installs Debian's prometheus).
#[tokio::test]
async fn the_metrics_scrape_passes_promtool() {
    let Some(promtool) = pm_config::testenv::test_server("PM_TEST_PROMTOOL") else {
        return;
    };
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, |s| s.jobs.debug_kinds = true).await;
    // Touch every family of metrics: requests, cache, jobs, activity.
    let (_, p) = app
        .post("/api/v1/products", serde_json::json!({"title": "m"}))
        .await;
    app.get(&format!("/api/v1/products/{}", p["id"].as_str().unwrap()))
        .await;
    let (_, j) = app
        .post(
            "/api/v1/jobs/catalog",
            serde_json::json!({"kind": "debug.sleep", "payload": {"ms": 10, "steps": 1}}),
        )
        .await;
    let path = format!("/api/v1/jobs/catalog/{}", j["id"].as_str().unwrap());
    assert!(app.wait_for(&path, |_, b| b["status"] == "succeeded").await);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}
