//! Backpressure and supervision, seen from the edge.

use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app, spawn_app_with, Backend};

fn find<'a>(actors: &'a Value, name: &str) -> &'a Value {
    actors
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn admin_lists_every_actor_with_its_state() {
    let app = spawn_app(Backend::Sqlite).await;
    let (st, actors) = app.get("/admin/actors").await;
    assert_eq!(st, 200);
    assert_eq!(actors.as_array().unwrap().len(), 7);
    let c = find(&actors, "store.catalog");
    for field in [
        "name",
        "kind",
        "capacity",
        "depth",
        "in_flight",
        "processed",
        "failed",
        "restarts",
        "status",
        "last_error",
    ] {
        assert!(c.get(field).is_some(), "missing {field}");
    }
    assert_eq!(c["status"], "running");
    let one = app.actor("store.catalog").await;
    assert_eq!(one["state"]["database"], "catalog");
    assert_eq!(one["state"]["backend"], "sqlite");
    assert_eq!(one["state"]["pool"]["configured"], 2);
    let (st, _) = app.get("/admin/actors/nope").await;
    assert_eq!(st, 404);
    // An operator's restart.
    let r = app
        .client
        .post(app.url("/admin/actors/store.core/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(
        app.wait_for("/admin/actors/store.core", |_, a| a["restarts"] == 1
            && a["status"] == "running")
            .await
    );
    app.stop().await;
}

#[tokio::test]
async fn a_flooded_actor_queues_exactly_its_capacity_and_the_edge_answers_503() {
    for backend in backends() {
        let capacity = 4;
        let app = spawn_app_with(backend, |s| {
            s.database.pools.catalog = 1;
            s.database.max_overflow = 0;
            s.actors.store_mailbox_capacity = capacity;
            s.actors.send_timeout_ms = 300;
        })
        .await;
        app.post("/api/v1/products", json!({"title": "flood"})).await;
        // The list is not cached (concurrent reads of one product would share one load).
        let path = "/api/v1/products?limit=1".to_owned();
        let fault = |action: &str| {
            app.client
                .post(app.url("/admin/actors/store.catalog/fault"))
                .json(&json!({"action": action}))
                .send()
        };
        assert_eq!(fault("pause").await.unwrap().status(), 204);

        let extra = 3;
        let mut calls = Vec::new();
        for _ in 0..capacity + extra {
            let (client, url) = (app.client.clone(), app.url(&path));
            calls.push(tokio::spawn(async move {
                let r = client.get(url).send().await.unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (r.status().as_u16(), retry)
            }));
        }
        // The admin view shows the mailbox full while the flood waits.
        assert!(
            app.wait_for("/admin/actors", |_, a| find(a, "store.catalog")["depth"]
                == capacity)
                .await,
            "{backend:?}: mailbox never filled"
        );
        // Those that found no slot within the send deadline got 503 with Retry-After, while the
        // depth stayed exactly at capacity.
        let rejected = app
            .wait_for("/admin/actors", |_, a| {
                find(a, "store.catalog")["rejected"] == extra
            })
            .await;
        assert!(rejected, "{backend:?}");
        assert_eq!(
            find(&app.get("/admin/actors").await.1, "store.catalog")["depth"],
            capacity
        );
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains(&format!(
            "pm_actor_mailbox_depth{{actor=\"store.catalog\",kind=\"store\"}} {capacity}"
        )));

        assert_eq!(fault("resume").await.unwrap().status(), 204);
        let mut statuses = Vec::new();
        for c in calls {
            let (status, retry) = c.await.unwrap();
            if status == 503 {
                assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
            }
            statuses.push(status);
        }
        statuses.sort();
        let mut expected = vec![200; capacity];
        expected.extend(vec![503; extra]);
        assert_eq!(statuses, expected, "{backend:?}");
        assert!(
            app.wait_for("/admin/actors/store.catalog", |_, a| a["depth"] == 0
                && a["in_flight"] == 0)
                .await
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_panicking_actor_restarts_and_callers_keep_working() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, p) = app.post("/api/v1/products", json!({"title": "survivor"})).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    for (i, action) in ["panic", "panic_async"].iter().enumerate() {
        let r = app
            .client
            .post(app.url("/admin/actors/store.catalog/fault"))
            .json(&json!({"action": action}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let n = i as u64 + 1;
        assert!(
            app.wait_for("/admin/actors/store.catalog", |_, a| a["restarts"] == n
                && a["panics"] == n
                && a["status"] == "running")
                .await,
            "restart {n} not seen"
        );
        // The same application state (and so the same mailbox handles) keeps serving.
        let (st, got) = app.get(&path).await;
        assert_eq!((st, got["title"].as_str()), (200, Some("survivor")));
    }
    let a = app.actor("store.catalog").await;
    assert!(
        a["last_error"]
            .as_str()
            .unwrap()
            .starts_with("panic: injected fault"),
        "{a}"
    );
    let (st, _) = app.get("/health/actors").await;
    assert_eq!(st, 200);
    app.stop().await;
}

#[tokio::test]
async fn beyond_restart_intensity_health_turns_red_and_the_app_exits_escalated() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.actors.max_restarts = 1;
        s.actors.restart_window_secs = 60;
        s.server.escalation_linger_ms = 60_000;
    })
    .await;
    // store.catalog crashes until `stores` gives up (twice), and then the root gives up.
    let mut red = false;
    for _ in 0..10 {
        let _ = app
            .client
            .post(app.url("/admin/actors/store.catalog/fault"))
            .json(&json!({"action": "panic"}))
            .send()
            .await
            .unwrap();
        let (st, h) = app.get("/health").await;
        if st == 503 {
            assert_eq!(h["status"], "escalated");
            red = true;
            break;
        }
    }
    assert!(red, "the root never escalated");
    let (st, a) = app.get("/health/actors").await;
    assert_eq!(st, 503, "{a}");
    assert!(
        a["supervisors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "root" && s["status"] == "escalated"),
        "{a}"
    );
    // Actors are stopped: requests fail fast with 503.
    let (st, p) = app.get("/api/v1/products").await;
    assert_eq!(st, 503, "{p}");
    match app.stop().await {
        products_manager::Outcome::Escalated(reason) => assert!(reason.contains("stores"), "{reason}"),
        other => panic!("expected escalation, got {other:?}"),
    }
}
