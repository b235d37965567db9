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
    let kinds = |k: &str| {
        actors
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == k)
            .count()
    };
    // Seven stores, the catalog with its bulk lane; a gate per job queue and the seeds' worker
    // counts (4 + 2 + 3 + 2 + 2); the activity-log writer.
    assert_eq!(kinds("store"), 8);
    assert_eq!(kinds("job_queue"), 5);
    assert_eq!(kinds("job_worker"), 13);
    assert_eq!(kinds("activity_writer"), 1);
    assert_eq!(actors.as_array().unwrap().len(), 27);
    assert_eq!(find(&actors, "store.catalog.bulk")["kind"], "store");
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
async fn a_panicking_request_to_a_store_fails_alone_and_a_crash_restarts_it() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, p) = app.post("/api/v1/products", json!({"title": "survivor"})).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    let fault = |action: &'static str| {
        app.client
            .post(app.url("/admin/actors/store.catalog/fault"))
            .json(&json!({"action": action}))
            .send()
    };
    // A store actor is a stateless gate: a panicking request fails, nothing restarts.
    for action in ["panic", "panic_async"] {
        assert_eq!(fault(action).await.unwrap().status(), 204);
    }
    let a = app.actor("store.catalog").await;
    assert_eq!(
        (a["panics"].as_u64(), a["restarts"].as_u64()),
        (Some(2), Some(0)),
        "{a}"
    );
    assert!(
        a["last_error"]
            .as_str()
            .unwrap()
            .starts_with("panic: injected fault"),
        "{a}"
    );
    // A crash that loses state restarts it in place; the same handles keep serving.
    assert_eq!(fault("crash").await.unwrap().status(), 204);
    assert!(
        app.wait_for("/admin/actors/store.catalog", |_, a| a["restarts"] == 1
            && a["status"] == "running")
            .await,
        "restart not seen"
    );
    let (st, got) = app.get(&path).await;
    assert_eq!((st, got["title"].as_str()), (200, Some("survivor")));
    let (st, _) = app.get("/health/actors").await;
    assert_eq!(st, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_thousand_panicking_requests_in_ten_seconds_leave_the_process_serving() {
    let app = spawn_app(Backend::Sqlite).await;
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for chunk in 0..20 {
        let batch = (0..50).map(|_| {
            app.client
                .post(app.url("/admin/actors/store.catalog/fault"))
                .json(&json!({"action": "panic_async"}))
                .send()
        });
        for r in futures::future::join_all(batch).await {
            statuses.push(r.unwrap().status().as_u16());
        }
        assert!(chunk < 19 || started.elapsed() < std::time::Duration::from_secs(60));
    }
    assert_eq!(statuses.len(), 1000);
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    let a = app.actor("store.catalog").await;
    assert_eq!(
        (a["panics"].as_u64(), a["restarts"].as_u64()),
        (Some(1000), Some(0)),
        "{a}"
    );
    let (st, h) = app.get("/health").await;
    assert_eq!(st, 200, "{h}");
    let (st, _) = app.get("/health/actors").await;
    assert_eq!(st, 200);
    let (st, _) = app.post("/api/v1/products", json!({"title": "still here"})).await;
    assert_eq!(st, 201);
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
    // store.catalog crashes until `stores` gives up (twice), and then the root gives up. Under
    // load a crash can land while the actor restarts (and be refused): keep crashing it until
    // the deadline rather than a fixed number of times.
    let mut red = false;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < until {
        let _ = app
            .client
            .post(app.url("/admin/actors/store.catalog/fault"))
            .json(&json!({"action": "crash"}))
            .send()
            .await
            .unwrap();
        // A restarting store also makes /health 503 for a moment: only "escalated" ends it.
        let (st, h) = app.get("/health").await;
        if st == 503 && h["status"] == "escalated" {
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

#[tokio::test]
async fn a_callers_error_is_not_counted_as_the_actors_failure() {
    let app = spawn_app(Backend::Sqlite).await;
    let before = app.actor("store.catalog").await;
    let (st, _) = app
        .get(&format!("/api/v1/products/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(st, 404);
    let (st, _) = app.get("/api/v1/products?cursor=not-a-cursor").await;
    assert_eq!(st, 422);
    let after = app.actor("store.catalog").await;
    assert_eq!(after["failed"], before["failed"], "{after}");
    assert!(
        after["processed"].as_u64() > before["processed"].as_u64(),
        "{after}"
    );
    app.stop().await;
}
