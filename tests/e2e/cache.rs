//! The two-level cache seen from the edge.

use pm_config::{Database, Secret};
use pm_storage::catalog::{Catalog, ProductPatch};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};

/// Changes a product's title behind the API's back (so no invalidation happens).
async fn retitle_directly(app: &TestApp, id: &str, title: &str) {
    let catalog = Catalog::new(app.db(Database::Catalog).await);
    let patch = ProductPatch {
        title: Some(title.into()),
        ..Default::default()
    };
    catalog
        .update_product(id.parse().unwrap(), patch, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn reads_hit_the_cache_and_writes_invalidate_it() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, p) = app.post("/api/v1/products", json!({"title": "original"})).await;
    let id = p["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/products/{id}");
    let r = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    let first: serde_json::Value = r.json().await.unwrap();
    assert_eq!(first["title"], "original");

    retitle_directly(&app, &id, "changed in the database").await;
    let (_, cached) = app.get(&path).await;
    assert_eq!(cached["title"], "original", "served from the cache");

    let (st, _) = app.patch(&path, json!({"status": "active"})).await;
    assert_eq!(st, 200);
    let (_, fresh) = app.get(&path).await;
    assert_eq!(
        fresh["title"], "changed in the database",
        "a write through the api invalidates"
    );
    assert_eq!(fresh["status"], "active");

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"pm_cache_requests_total{kind="products",result="l1_hit"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"pm_cache_requests_total{kind="products",result="miss"}"#));

    // Not found is not cached.
    let missing = format!("/api/v1/products/{}", uuid::Uuid::now_v7());
    assert_eq!(app.get(&missing).await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn with_redis_down_reads_still_succeed_and_health_says_so() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.cache.redis_url = Some(Secret::new("redis://127.0.0.1:1"))
    })
    .await;
    let (_, p) = app.post("/api/v1/products", json!({"title": "resilient"})).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    for _ in 0..3 {
        let (st, got) = app.get(&path).await;
        assert_eq!((st, got["title"].as_str()), (200, Some("resilient")));
    }
    assert_eq!(app.get("/health/redis").await.0, 503);
    app.stop().await;
}

#[tokio::test]
async fn an_invalidation_on_one_instance_reaches_the_other_through_redis() {
    let Some(url) = pm_config::testenv::test_server("PM_TEST_REDIS_URL") else {
        return;
    };
    let prefix = format!("pmtest:{}:", uuid::Uuid::new_v4().simple());
    let configure = |s: &mut pm_config::Settings| {
        s.cache.redis_url = Some(Secret::new(url.clone()));
        s.cache.key_prefix = prefix.clone();
        s.cache.invalidation_channel = format!("{prefix}invalidations");
    };
    let a = spawn_app_with(Backend::Sqlite, configure).await;
    // B runs on the same databases (same data directory) and the same Redis.
    let b = spawn_app_with(Backend::Sqlite, |s| {
        configure(s);
        s.storage.data_dir = a.settings.storage.data_dir.clone();
    })
    .await;
    let (_, p) = a.post("/api/v1/products", json!({"title": "v1"})).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    assert_eq!(a.get(&path).await.1["title"], "v1");
    assert_eq!(b.get(&path).await.1["title"], "v1");
    let (st, _) = b.patch(&path, json!({"title": "v2"})).await;
    assert_eq!(st, 200);
    assert!(
        a.wait_for(&path, |_, body| body["title"] == "v2").await,
        "a still serves v1"
    );
    b.stop().await;
    a.stop().await;
}
