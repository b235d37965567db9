//! The OpenAPI document (`/api/v1/openapi.json`) against the router that serves it, and the
//! interactive reference (`/api/docs`) with its embedded assets.

use serde_json::Value;

use crate::helpers::{spawn_app, Backend, TestApp};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn document(app: &TestApp) -> Value {
    let r = app
        .anon
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("cache-control"));
    r.json().await.unwrap()
}

/// A request path for a documented one: every parameter filled with a value of its kind.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let value = match &rest[start + 1..end] {
            "queue" => "imports".to_owned(),
            "name" => "no.such.actor".to_owned(),
            "file" => "init.js".to_owned(),
            "key" | "warehouse" | "slug" => "no-such-thing".to_owned(),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every operation as (method, path template, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn is_public(op: &Value) -> bool {
    match op.get("security").and_then(Value::as_array) {
        None => true,
        Some(reqs) => reqs.is_empty() || reqs.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())),
    }
}

async fn send(client: &reqwest::Client, app: &TestApp, method: &str, path: &str) -> (u16, Value) {
    let url = app.url(&concrete(path));
    let req = match method {
        "get" => client.get(url),
        "put" => client.put(url),
        "post" => client.post(url),
        "delete" => client.delete(url),
        "patch" => client.patch(url),
        other => panic!("{other}"),
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_self_consistent() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Products Manager");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");

    let ops = operations(&doc);
    assert!(ops.len() >= 95, "{} operations", ops.len());
    // Operation ids are unique (generated clients name their methods by them).
    let mut ids: Vec<&str> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operation ids");
    // Every reference resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/").skip(1) {
        let pointer = format!("/{}", part.split('"').next().unwrap());
        assert!(doc.pointer(&pointer).is_some(), "dangling reference {pointer}");
    }
    for (m, path, op) in &ops {
        // Every error answer is a problem.
        for (status, resp) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let r = match resp["$ref"].as_str() {
                    Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
                    None => resp,
                };
                let media = r["content"].as_object().map(|c| c.keys().collect::<Vec<_>>());
                // The health routes answer their own JSON with a 503, and a cancel of a
                // finished job its outcome with a 409.
                let own = path.starts_with("/health") || (path.ends_with("/cancel") && status == "409");
                assert!(
                    own || media == Some(vec![&"application/problem+json".to_owned()]),
                    "{m} {path} {status}: errors are problem+json, not {media:?}"
                );
            }
        }
        // Login and refresh are public; the rest of /api/v1 but the reference's own routes
        // and the WebSocket (which may authenticate by a first message) is not.
        let public_by_design = path.ends_with("/auth/login")
            || path.ends_with("/auth/refresh")
            || path == "/api/v1/openapi.json"
            || path == "/api/v1/ws";
        if path.starts_with("/api/v1/") && !public_by_design {
            assert!(!is_public(op), "{m} {path} is documented as public");
            assert!(op["responses"].get("401").is_some(), "{m} {path}: no 401");
        }
    }
    app.stop().await;
}

/// Every documented operation is routed (no "no route" 404, no 405), answers without a
/// token exactly as its security says, and with the admin's token answers a status it
/// documents.
#[tokio::test]
async fn every_documented_operation_is_served_as_documented() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    for (m, path, op) in operations(&doc) {
        let (anon_status, body) = send(&app.anon, &app, &m, &path).await;
        let routed = |status: u16, body: &Value| {
            status != 405
                && !(status == 404
                    && body["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("no route for")))
        };
        assert!(routed(anon_status, &body), "{m} {path}: {anon_status} {body}");
        if is_public(&op) {
            assert_ne!(anon_status, 401, "{m} {path} is documented public: {body}");
        } else {
            assert_eq!(anon_status, 401, "{m} {path} is documented secured: {body}");
        }
        let (status, body) = send(&app.client, &app, &m, &path).await;
        assert!(routed(status, &body), "{m} {path}: {status} {body}");
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{m} {path}: {status} is not documented: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_reference_page_uses_only_embedded_assets() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.anon.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().unwrap().to_owned();
            assert!(url.starts_with("/api/docs/assets/"), "{url} is not ours");
            assets.push(url);
        }
    }
    assert_eq!(assets.len(), 3, "{assets:?}");
    for url in assets {
        let r = app.anon.get(app.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        let want = if url.contains(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(ct.starts_with(want), "{url}: {ct}");
        assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age"));
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    // Its license travels with it; an unknown asset is a 404 problem.
    let r = app
        .anon
        .get(app.url("/api/docs/assets/LICENSE"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Apache License"));
    let r = app
        .anon
        .get(app.url("/api/docs/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    app.stop().await;
}

/// What schemathesis found, kept fixed.
#[tokio::test]
async fn schemathesis_findings_stay_fixed() {
    use serde_json::json;
    for backend in crate::helpers::backends() {
        let app = spawn_app(backend).await;
        // A permission listed twice in a role update was a 500 (a unique constraint).
        let (st, role) = app
            .post(
                "/api/v1/roles",
                json!({"name": "twice", "permissions": ["catalog:read"]}),
            )
            .await;
        assert_eq!(st, 201, "{role}");
        let id = role["id"].as_str().unwrap();
        let (st, role) = app
            .patch(
                &format!("/api/v1/roles/{id}"),
                json!({"permissions": ["catalog:write", "catalog:read", "catalog:write"]}),
            )
            .await;
        assert_eq!(st, 200, "{backend:?} {role}");
        assert_eq!(role["permissions"], json!(["catalog:read", "catalog:write"]));
        // A request to the WebSocket that is no handshake is a 400 problem, not plain text.
        let r = app.client.get(app.url("/api/v1/ws")).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        // Enqueueing reads its body like every other route: a wrong field is a 422 naming it.
        let (st, body) = app
            .post(
                "/api/v1/jobs/catalog",
                json!({"kind": "debug.sleep", "colour": "red"}),
            )
            .await;
        assert_eq!(st, 422, "{body}");
        assert!(
            body["errors"][0]["reason"].as_str().unwrap().contains("colour"),
            "{body}"
        );
        app.stop().await;
    }
}
