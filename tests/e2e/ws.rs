//! `GET /api/v1/ws`: authentication, subscriptions with permission checks, live job progress,
//! the cancel command, live notifications, and a slow client that lags.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{backends, spawn_app, spawn_app_with, Backend, TestApp};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn token(app: &TestApp, user: &str, password: &str) -> String {
    app.login(user, password).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn admin_token(app: &TestApp) -> String {
    token(app, "admin", crate::helpers::ADMIN_PASSWORD).await
}

async fn connect(app: &TestApp, bearer: Option<&str>) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{}/api/v1/ws", app.addr)
        .into_client_request()
        .unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON text message (pings are answered by the client library), within 10 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the connection is open")
            .unwrap();
        match m {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => return json!({ "type": "closed", "frame": format!("{c:?}") }),
            _ => {}
        }
    }
}

/// The next message of `kind`, skipping others.
async fn next_of(ws: &mut Ws, kind: &str, mut cond: impl FnMut(&Value) -> bool) -> Value {
    loop {
        let m = next(ws).await;
        if m["type"] == kind && cond(&m) {
            return m;
        }
        assert_ne!(m["type"], "closed", "closed while waiting for {kind}");
    }
}

async fn subscribe(ws: &mut Ws, topic: &str) -> Value {
    send(ws, json!({"type": "subscribe", "topic": topic})).await;
    loop {
        let m = next(ws).await;
        if m["type"] == "subscribed" || m["type"] == "error" {
            return m;
        }
    }
}

#[tokio::test]
async fn websocket_authenticates_by_header_or_first_message_and_refuses_the_rest() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = admin_token(&app).await;
    let mut ws = connect(&app, Some(&t)).await.unwrap();
    let ready = next(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["principal"]["name"], "admin");
    // browsers: the token as the first message
    let mut ws2 = connect(&app, None).await.unwrap();
    send(&mut ws2, json!({"type": "auth", "token": t})).await;
    assert_eq!(next(&mut ws2).await["type"], "ready");
    send(&mut ws2, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws2).await["type"], "pong");
    // a bad token as first message: an error, then the close
    let mut ws3 = connect(&app, None).await.unwrap();
    send(&mut ws3, json!({"type": "auth", "token": "nope"})).await;
    let e = next(&mut ws3).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("unauthorized")),
        "{e}"
    );
    assert_eq!(next(&mut ws3).await["type"], "closed");
    // something else first: refused too
    let mut ws4 = connect(&app, None).await.unwrap();
    send(
        &mut ws4,
        json!({"type": "subscribe", "topic": "catalog.products"}),
    )
    .await;
    assert_eq!(next(&mut ws4).await["code"], "unauthorized");
    // a bad header: refused before the upgrade
    match connect(&app, Some("not-a-token")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
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
        metrics.contains("pm_ws_connections"),
        "no pm_ws_connections in /metrics"
    );
    drop((ws, ws2));
    app.stop().await;
}

#[tokio::test]
async fn subscriptions_are_checked_per_topic_and_deliver_catalog_changes() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, p) = app.post("/api/v1/products", json!({"title": "watched"})).await;
        let id = p["id"].as_str().unwrap().to_owned();
        let mut ws = connect(&app, Some(&admin_token(&app).await)).await.unwrap();
        next_of(&mut ws, "ready", |_| true).await;
        let s = subscribe(&mut ws, &format!("catalog.products.{id}")).await;
        assert_eq!(s["type"], "subscribed", "{s}");
        app.patch(&format!("/api/v1/products/{id}"), json!({"title": "changed"}))
            .await;
        let e = next_of(&mut ws, "event", |_| true).await;
        assert_eq!(e["topic"], format!("catalog.products.{id}"));
        assert_eq!(
            (e["event"].as_str(), e["data"]["action"].as_str()),
            (Some("product"), Some("update"))
        );
        let s = subscribe(&mut ws, "no.such.topic").await;
        assert_eq!(s["code"], "unknown_topic", "{s}");

        // a viewer: the catalog yes; all jobs, other people's notifications, no
        let (st, _) = app
            .post(
                "/api/v1/users",
                json!({"username": "vera", "password": "long enough pw", "roles": ["viewer"]}),
            )
            .await;
        assert_eq!(st, 201);
        let mut v = connect(&app, Some(&token(&app, "vera", "long enough pw").await))
            .await
            .unwrap();
        next_of(&mut v, "ready", |_| true).await;
        assert_eq!(subscribe(&mut v, "catalog.products").await["type"], "subscribed");
        let s = subscribe(&mut v, "jobs.imports").await;
        assert_eq!(
            (s["type"].as_str(), s["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{s}"
        );
        let other = uuid::Uuid::now_v7();
        assert_eq!(
            subscribe(&mut v, &format!("notifications.{other}")).await["code"],
            "forbidden"
        );
        assert_eq!(subscribe(&mut v, "notifications").await["type"], "subscribed");
        send(
            &mut v,
            json!({"type": "unsubscribe", "topic": "catalog.products"}),
        )
        .await;
        assert_eq!(next(&mut v).await["type"], "unsubscribed");
        app.stop().await;
    }
}

fn debug_jobs(s: &mut pm_config::Settings) {
    s.jobs.debug_kinds = true;
    s.jobs.lease_secs = 1;
    s.jobs.poll_interval_ms = 50;
}

#[tokio::test]
async fn a_jobs_progress_arrives_live_and_the_cancel_command_stops_it() {
    let app = spawn_app_with(Backend::Sqlite, debug_jobs).await;
    let (st, job) = app
        .post(
            "/api/v1/jobs/imports",
            json!({"kind": "debug.sleep", "payload": {"ms": 60000, "steps": 600}}),
        )
        .await;
    assert_eq!(st, 202);
    let id = job["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&app, Some(&admin_token(&app).await)).await.unwrap();
    next_of(&mut ws, "ready", |_| true).await;
    assert_eq!(
        subscribe(&mut ws, &format!("jobs.imports.{id}")).await["type"],
        "subscribed"
    );
    let progress = next_of(&mut ws, "event", |e| e["data"]["progress"]["done"].is_u64()).await;
    assert_eq!(progress["data"]["status"], "running", "{progress}");
    send(&mut ws, json!({"type": "cancel", "queue": "imports", "id": id})).await;
    let c = next_of(&mut ws, "cancelled", |_| true).await;
    assert_eq!(c["outcome"], "requested", "{c}");
    let done = next_of(&mut ws, "event", |e| e["data"]["status"] == "cancelled").await;
    assert_eq!(done["data"]["id"], id.as_str());
    // a cancel of an unknown job is an error naming the command
    send(
        &mut ws,
        json!({"type": "cancel", "queue": "imports", "id": uuid::Uuid::now_v7()}),
    )
    .await;
    let e = next_of(&mut ws, "error", |_| true).await;
    assert_eq!(
        (e["code"].as_str(), e["about"]["command"].as_str()),
        (Some("not_found"), Some("cancel"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failed_job_notifies_its_creator_live() {
    let app = spawn_app_with(Backend::Sqlite, debug_jobs).await;
    let mut ws = connect(&app, Some(&admin_token(&app).await)).await.unwrap();
    next_of(&mut ws, "ready", |_| true).await;
    assert_eq!(subscribe(&mut ws, "notifications").await["type"], "subscribed");
    let (st, _) = app
        .post(
            "/api/v1/jobs/exports",
            json!({"kind": "debug.sleep", "payload": {"ms": 10, "steps": 1, "fatal": true}}),
        )
        .await;
    assert_eq!(st, 202);
    let n = next_of(&mut ws, "event", |e| e["event"] == "notification").await;
    assert_eq!(n["data"]["kind"], "job_failed", "{n}");
    app.stop().await;
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
async fn a_slow_client_is_told_how_many_events_it_missed_and_nothing_else_is_lost() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.server.ws_buffer_events = 2).await;
    let n = 300u64;
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"title": format!("p{i}"), "ean": ean13(300_000_000_000 + i)}))
        .collect();
    let (st, r) = app.post("/api/v1/products/bulk", json!({"items": items})).await;
    assert_eq!((st, r["created"].as_u64()), (200, Some(n)), "{r}");
    let mut ws = connect(&app, Some(&admin_token(&app).await)).await.unwrap();
    next_of(&mut ws, "ready", |_| true).await;
    for res in r["results"].as_array().unwrap() {
        let id = res["id"].as_str().unwrap();
        assert_eq!(
            subscribe(&mut ws, &format!("catalog.products.{id}")).await["type"],
            "subscribed"
        );
    }
    // one batch: n events published at once into a buffer of 2
    let again: Vec<Value> = (0..n)
        .map(|i| json!({"title": format!("p{i} v2"), "ean": ean13(300_000_000_000 + i)}))
        .collect();
    let (st, r) = app.post("/api/v1/products/bulk", json!({"items": again})).await;
    assert_eq!((st, r["updated"].as_u64()), (200, Some(n)), "{r}");
    let (mut events, mut missed, mut lagged) = (0u64, 0u64, 0u64);
    while events + missed < n {
        let m = next(&mut ws).await;
        match m["type"].as_str() {
            Some("event") => events += 1,
            Some("lagged") => {
                lagged += 1;
                missed += m["missed"].as_u64().unwrap();
            }
            _ => panic!("unexpected {m}"),
        }
    }
    assert_eq!(events + missed, n, "every event delivered or counted as missed");
    assert!(lagged >= 1 && missed > 0, "{events} events, {missed} missed");
    // the connection still works
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await["type"], "pong");
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
        metrics.contains("pm_events_dropped_total"),
        "dropped events not in /metrics"
    );
    app.stop().await;
}

/// `imports.supplier.<id>`: every import job of a supplier, live, for whoever may read imports.
#[tokio::test]
async fn a_suppliers_imports_arrive_on_its_topic() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, supplier) = app
        .post("/api/v1/suppliers", json!({"code": "live", "name": "Live"}))
        .await;
    let sid = supplier["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&app, Some(&admin_token(&app).await)).await.unwrap();
    next_of(&mut ws, "ready", |_| true).await;
    assert_eq!(
        subscribe(&mut ws, &format!("imports.supplier.{sid}")).await["type"],
        "subscribed"
    );
    assert_eq!(
        subscribe(&mut ws, "imports.supplier.nope").await["code"],
        "unknown_topic"
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"ean;title\n4006381333931;Stylo\n".to_vec()).file_name("a.csv"),
    );
    let r = app
        .client
        .post(app.url(&format!("/api/v1/suppliers/{sid}/imports")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let done = next_of(&mut ws, "event", |e| e["data"]["status"] == "succeeded").await;
    assert_eq!(done["topic"], format!("imports.supplier.{sid}"), "{done}");
    assert_eq!(done["data"]["id"], job["id"], "{done}");
    app.stop().await;
}
