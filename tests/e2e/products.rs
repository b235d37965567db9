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
        // Reads add the main image (none yet) to the product as stored.
        let mut want = p.clone();
        want["main_image"] = serde_json::Value::Null;
        assert_eq!(got, want);

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

#[tokio::test]
async fn list_filters_sorting_and_every_page_once() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let titles = ["delta", "alpha", "charlie", "bravo", "echo"];
        for (i, t) in titles.iter().enumerate() {
            let body = json!({"title": t, "status": if i % 2 == 0 { "active" } else { "draft" },
                              "asin": if i < 2 { Some("B07N4M94X4") } else { None }, "weight_grams": 100 * i});
            assert_eq!(app.post("/api/v1/products", body).await.0, 201);
        }
        // Title order, walked two at a time in both directions.
        for (sort, expected) in [
            ("title", vec!["alpha", "bravo", "charlie", "delta", "echo"]),
            ("-title", vec!["echo", "delta", "charlie", "bravo", "alpha"]),
        ] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/api/v1/products?limit=2&sort={sort}&cursor={c}"),
                    None => format!("/api/v1/products?limit=2&sort={sort}"),
                };
                let (st, page) = app.get(&path).await;
                assert_eq!(st, 200, "{page}");
                seen.extend(
                    page["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p["title"].as_str().unwrap().to_owned()),
                );
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{backend:?} {sort}");
        }
        let count = |v: &serde_json::Value| v["items"].as_array().unwrap().len();
        assert_eq!(count(&app.get("/api/v1/products?status=active").await.1), 3);
        assert_eq!(count(&app.get("/api/v1/products?has_asin=true").await.1), 2);
        assert_eq!(
            count(&app.get("/api/v1/products?has_asin=false&status=active").await.1),
            2
        );
        assert_eq!(
            count(
                &app.get("/api/v1/products?updated_since=2000-01-01T00:00:00Z")
                    .await
                    .1
            ),
            5
        );
        assert_eq!(count(&app.get("/api/v1/products?in_stock=true").await.1), 0);
        // Bad parameters name themselves.
        let (st, p) = app
            .get("/api/v1/products?sort=price&has_asin=maybe&price_min=3")
            .await;
        assert_eq!(st, 422);
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["sort", "has_asin", "currency"], "{p}");
        let (st, _) = app
            .get("/api/v1/products?sort=title&cursor=bm90LWEtY3Vyc29y")
            .await;
        assert_eq!(st, 422);
        app.stop().await;
    }
}

#[tokio::test]
async fn bulk_upsert_reports_every_item_and_lands_the_good_ones() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (st, r) = app
            .post(
                "/api/v1/products/bulk",
                json!({"items": [
                    {"ean": "4006381333931", "title": "first"},
                    {"ean": "4006381333932", "title": "bad check digit"},
                    {"title": "no ean"},
                    {"ean": "887276302195", "title": "second", "colour": "red"},
                    {"ean": "887276302195", "title": "second"},
                    {"ean": "4006381333931", "title": "first, renamed"}
                ]}),
            )
            .await;
        assert_eq!(st, 200, "{r}");
        let res = r["results"].as_array().unwrap();
        let kinds: Vec<&str> = res.iter().map(|x| x["result"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["created", "failed", "failed", "failed", "created", "updated"],
            "{backend:?} {r}"
        );
        assert_eq!(res[1]["field"], "ean");
        assert_eq!(res[2]["field"], "ean");
        assert_eq!(res[3]["field"], "colour");
        assert_eq!(res[0]["id"], res[5]["id"]);
        assert_eq!(
            (r["created"].as_u64(), r["updated"].as_u64(), r["failed"].as_u64()),
            (Some(2), Some(1), Some(3))
        );
        let (_, got) = app
            .get(&format!("/api/v1/products/{}", res[0]["id"].as_str().unwrap()))
            .await;
        assert_eq!(got["title"], "first, renamed");
        let too_many: Vec<serde_json::Value> = (0..1001).map(|i| json!({"title": format!("t{i}")})).collect();
        let (st, p) = app
            .post("/api/v1/products/bulk", json!({"items": too_many}))
            .await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("items")));
        app.stop().await;
    }
}

#[tokio::test]
async fn search_puts_exact_hits_first_matches_prefixes_and_survives_any_input() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        for (ean, sku, title, brand) in [
            ("4006381333931", "PEN-1", "Stabilo point pen", "Stabilo"),
            ("887276302195", "TAB-1", "Galaxy Tab S6", "Samsung"),
            (
                "4002515289693",
                "TAB-2",
                "Tab protector for Galaxy tablets",
                "Hama",
            ),
        ] {
            let (st, _) = app
                .post(
                    "/api/v1/products",
                    json!({"ean": ean, "sku": sku, "title": title, "brand": brand}),
                )
                .await;
            assert_eq!(st, 201);
        }
        let (st, r) = app.get("/api/v1/products/search?q=0887276302195").await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["items"][0]["match_kind"], "ean", "{backend:?} {r}");
        assert_eq!(r["items"][0]["product"]["sku"], "TAB-1");
        let (_, r) = app.get("/api/v1/products/search?q=galax").await;
        let skus: Vec<&str> = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["product"]["sku"].as_str().unwrap())
            .collect();
        assert_eq!(skus.len(), 2, "{backend:?} prefix match: {r}");
        let (_, r) = app.get("/api/v1/products/search?q=TAB-2").await;
        assert_eq!(r["items"][0]["match_kind"], "sku");
        for weird in [
            "%22",
            "*",
            "AND(",
            "%25",
            "_",
            "'",
            "%5C",
            "NEAR(a b)",
            "-",
            "%F0%9F%98%80",
        ] {
            let (st, r) = app.get(&format!("/api/v1/products/search?q={weird}")).await;
            assert_eq!(st, 200, "{backend:?} q={weird}: {r}");
        }
        let (st, _) = app.get("/api/v1/products/search?q=").await;
        assert_eq!(st, 422);
        // Cached, and a product write invalidates every search result.
        let (_, before) = app.get("/api/v1/products/search?q=stabilo").await;
        assert_eq!(before["items"].as_array().unwrap().len(), 1);
        app.post(
            "/api/v1/products",
            json!({"title": "Stabilo highlighter", "brand": "Stabilo"}),
        )
        .await;
        let (_, after) = app.get("/api/v1/products/search?q=stabilo").await;
        assert_eq!(
            after["items"].as_array().unwrap().len(),
            2,
            "{backend:?} stale search result"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn deleted_products_wait_in_the_trash_and_can_be_restored() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, p) = app
            .post(
                "/api/v1/products",
                json!({"title": "oops", "ean": "4006381333931"}),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_owned();
        let r = app
            .client
            .delete(app.url(&format!("/api/v1/products/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(app.get(&format!("/api/v1/products/{id}")).await.0, 404);
        let (_, trash) = app.get("/api/v1/products/trash").await;
        assert_eq!(trash["items"][0]["id"], id.as_str());
        assert!(trash["items"][0]["deleted_at"].is_string());
        let (st, back) = app
            .post(&format!("/api/v1/products/{id}/restore"), json!({}))
            .await;
        assert_eq!((st, back["title"].as_str()), (200, Some("oops")), "{back}");
        assert_eq!(app.get(&format!("/api/v1/products/{id}")).await.0, 200);
        // A restore that would duplicate a live EAN is refused.
        app.client
            .delete(app.url(&format!("/api/v1/products/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            app.post(
                "/api/v1/products",
                json!({"title": "new owner", "ean": "4006381333931"})
            )
            .await
            .0,
            201
        );
        let (st, p) = app
            .post(&format!("/api/v1/products/{id}/restore"), json!({}))
            .await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (409, Some("ean")), "{p}");
        app.stop().await;
    }
}

#[tokio::test]
async fn the_trash_is_purged_after_the_retention() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.catalog.trash_retention_days = 0;
        s.catalog.trash_purge_interval_secs = 1;
    })
    .await;
    let (_, p) = app.post("/api/v1/products", json!({"title": "gone soon"})).await;
    app.client
        .delete(app.url(&format!("/api/v1/products/{}", p["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert!(
        app.wait_for("/api/v1/products/trash", |_, t| t["items"]
            .as_array()
            .is_some_and(|a| a.is_empty()))
            .await
    );
    app.stop().await;
}
