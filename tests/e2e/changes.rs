//! Write-side change events: the write path itself invalidates and audits, whatever becomes of
//! the HTTP request.

use std::time::Duration;

use pm_config::Database;
use serde_json::json;

use crate::helpers::{backends, spawn_app, TestApp};

async fn fault(app: &TestApp, actor: &str, action: &str) {
    let r = app
        .client
        .post(app.url(&format!("/admin/actors/{actor}/fault")))
        .json(&json!({ "action": action }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn a_write_whose_request_was_dropped_still_invalidates_and_is_audited() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, p) = app.post("/api/v1/products", json!({"title": "before"})).await;
        let id = p["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/products/{id}");
        // cached now
        assert_eq!(app.get(&path).await.1["title"], "before");
        // The write reaches the store, which holds it; the client gives up and goes away.
        fault(&app, "store.catalog", "pause").await;
        let dropped = app
            .client
            .patch(app.url(&path))
            .json(&json!({"title": "after"}))
            .timeout(Duration::from_millis(300))
            .send()
            .await;
        assert!(dropped.is_err_and(|e| e.is_timeout()), "{backend:?}");
        fault(&app, "store.catalog", "resume").await;
        // Without the write path's invalidation the cached "before" would be served for the
        // cache's TTL (30 minutes for products).
        let fresh = app.wait_for(&path, |_, b| b["title"] == "after").await;
        assert!(fresh, "{backend:?}: the dropped write left the cache stale");
        let analytics = pm_storage::analytics::Analytics::new(app.db(Database::Analytics).await);
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let actions = loop {
            let rows = analytics.recent_activity(Some(&id), 10).await.unwrap();
            let actions: Vec<String> = rows.iter().map(|a| a.action.clone()).collect();
            if actions.len() >= 2 || std::time::Instant::now() > until {
                break actions;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(actions, ["update", "create"], "{backend:?}");
        app.stop().await;
    }
}

/// A valid EAN-13 from its first twelve digits.
fn ean13(twelve: u64) -> String {
    let digits = format!("{twelve:012}");
    let sum: u32 = digits
        .chars()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap() * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

#[tokio::test]
async fn a_bulk_batch_invalidates_and_is_audited_once() {
    let app = spawn_app(crate::helpers::Backend::Sqlite).await;
    let (_, p) = app
        .post(
            "/api/v1/products",
            json!({"title": "old", "ean": "4006381333931"}),
        )
        .await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    assert_eq!(app.get(&path).await.1["title"], "old");
    let items: Vec<_> = (0..120)
        .map(|i| json!({"title": format!("bulk {i}"), "ean": ean13(200_000_000_000 + i)}))
        .chain([json!({"title": "new", "ean": "4006381333931"})])
        .collect();
    let (st, r) = app.post("/api/v1/products/bulk", json!({"items": items})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(app.get(&path).await.1["title"], "new");
    let a = app.actor("activity.writer").await;
    let analytics = pm_storage::analytics::Analytics::new(app.db(Database::Analytics).await);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let bulk = loop {
        let rows = analytics.recent_activity(None, 50).await.unwrap();
        let bulk: Vec<_> = rows.into_iter().filter(|r| r.action == "bulk_upsert").collect();
        if !bulk.is_empty() || std::time::Instant::now() > until {
            break bulk;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(bulk.len(), 1, "{a}");
    assert_eq!(bulk[0].entity_id.as_deref(), Some("120 created, 1 updated"));
    app.stop().await;
}
