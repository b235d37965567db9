//! The product slice, through the edge and the catalog store actor, on every backend.

use serde_json::json;

use crate::helpers::{backends, spawn_app};

#[tokio::test]
async fn product_crud_and_listing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (st, p) = app
            .post("/api/v1/products", json!({"ean": " 887276302195 ", "sku": "SKU-1", "title": "  Galaxy Tab  ", "brand": "Samsung"}))
            .await;
        assert_eq!(st, 201, "{backend:?} {p}");
        assert_eq!(p["ean"], "0887276302195", "stored normalised");
        assert_eq!(p["title"], "Galaxy Tab");
        assert_eq!(p["status"], "draft");
        let id = p["id"].as_str().unwrap().to_owned();

        let (st, got) = app.get(&format!("/api/v1/products/{id}")).await;
        assert_eq!(st, 200);
        assert_eq!(got, p);

        let (st, patched) = app
            .patch(
                &format!("/api/v1/products/{id}"),
                json!({"title": "Galaxy Tab S", "brand": null, "status": "active", "asin": "b07n4m94x4"}),
            )
            .await;
        assert_eq!(st, 200, "{patched}");
        assert_eq!(patched["title"], "Galaxy Tab S");
        assert_eq!(patched["brand"], serde_json::Value::Null);
        assert_eq!(patched["sku"], "SKU-1");
        assert_eq!(patched["asin"], "B07N4M94X4");
        assert_eq!(patched["status"], "active");

        for i in 0..4 {
            let (st, _) = app
                .post("/api/v1/products", json!({"title": format!("item {i}")}))
                .await;
            assert_eq!(st, 201);
        }
        let (st, page1) = app.get("/api/v1/products?limit=3").await;
        assert_eq!(st, 200);
        assert_eq!(page1["items"].as_array().unwrap().len(), 3);
        let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
        let (_, page2) = app
            .get(&format!("/api/v1/products?limit=3&cursor={cursor}"))
            .await;
        assert_eq!(page2["items"].as_array().unwrap().len(), 2);
        assert!(page2["next_cursor"].is_null());
        let (_, active) = app.get("/api/v1/products?status=active").await;
        assert_eq!(active["items"].as_array().unwrap().len(), 1);
        let (_, by_ean) = app.get("/api/v1/products?ean=0887276302195").await;
        assert_eq!(by_ean["items"][0]["id"], id.as_str());

        let r = app
            .client
            .delete(app.url(&format!("/api/v1/products/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (st, problem) = app.get(&format!("/api/v1/products/{id}")).await;
        assert_eq!(st, 404);
        assert_eq!(problem["status"], 404);
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_and_reason_and_changes_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let cases = [
            (
                json!({"title": "x", "ean": "4006381333932"}),
                422,
                "ean",
                "check digit",
            ),
            (
                json!({"title": "x", "ean": "4.00638E+12"}),
                422,
                "ean",
                "only digits",
            ),
            (
                json!({"title": "x", "colour": "red"}),
                422,
                "colour",
                "unknown field `colour`",
            ),
            (json!({"title": "   "}), 422, "title", "must not be empty"),
            (
                json!({"title": "x", "status": "deleted"}),
                422,
                "status",
                "unknown variant",
            ),
            (json!({"title": "x", "asin": "short"}), 422, "asin", "10 letters"),
            (
                json!({"ean": "4006381333931"}),
                422,
                "body",
                "missing field `title`",
            ),
        ];
        for (body, status, field, reason) in cases {
            let r = app
                .client
                .post(app.url("/api/v1/products"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), status, "{body}");
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            let p: serde_json::Value = r.json().await.unwrap();
            let e = &p["errors"][0];
            assert_eq!(e["field"], field, "{body} -> {p}");
            assert!(e["reason"].as_str().unwrap().contains(reason), "{body} -> {p}");
        }
        // Malformed JSON, wrong content type, oversized body.
        let r = app
            .client
            .post(app.url("/api/v1/products"))
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = app
            .client
            .post(app.url("/api/v1/products"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);
        let big = json!({"title": "x", "description": "a".repeat(app.settings.server.body_limit_bytes + 1)});
        let r = app
            .client
            .post(app.url("/api/v1/products"))
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        let p: serde_json::Value = r.json().await.unwrap();
        assert!(p["detail"].as_str().unwrap().contains("limit"), "{p}");
        // Bad ids, cursors and limits.
        let (st, p) = app.get("/api/v1/products/not-a-uuid").await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("id")));
        let (st, p) = app.get("/api/v1/products?cursor=zzz").await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("cursor")));
        let (st, p) = app.get("/api/v1/products?limit=0&status=gone").await;
        assert_eq!(st, 422);
        assert_eq!(p["errors"].as_array().unwrap().len(), 2, "{p}");
        // Nothing above created anything.
        let (_, list) = app.get("/api/v1/products").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 0);

        // A duplicate EAN (spelled differently) is a conflict naming the field.
        let (st, _) = app
            .post("/api/v1/products", json!({"title": "a", "ean": "0887276302195"}))
            .await;
        assert_eq!(st, 201);
        let (st, p) = app
            .post("/api/v1/products", json!({"title": "b", "ean": "887276302195"}))
            .await;
        assert_eq!(st, 409, "{p}");
        assert_eq!(p["errors"][0]["field"], "ean");
        app.stop().await;
    }
}

#[tokio::test]
async fn every_response_has_a_request_id_and_unknown_routes_are_problems() {
    let app = spawn_app(crate::helpers::Backend::Sqlite).await;
    let r = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(!r.headers()["x-request-id"].is_empty());
    let r = app.client.put(app.url("/api/v1/products")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // A caller's request id is kept.
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    app.stop().await;
}
