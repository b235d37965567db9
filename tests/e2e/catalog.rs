//! The catalog entities around products (suppliers and offers, brands, categories, prices,
//! stocks, attributes, variants, bundles, SEO) through the edge, on every backend.

use pm_config::Database;
use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app, TestApp};

async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    send(app.client.put(app.url(path)).json(&body)).await
}

async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    send(app.client.delete(app.url(path))).await
}

/// Creates a product and returns its id.
async fn product(app: &TestApp, title: &str) -> String {
    let (st, p) = app.post("/api/v1/products", json!({"title": title})).await;
    assert_eq!(st, 201, "{p}");
    p["id"].as_str().unwrap().to_owned()
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

fn len(v: &Value) -> usize {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).len()
}

/// Every item of a keyset-paginated list, walking `next_cursor` with pages of `limit`;
/// asserts that every page but the last is full.
async fn walk(app: &TestApp, path: &str, limit: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (st, page) = app.get(&url).await;
        assert_eq!(st, 200, "{url}: {page}");
        let got = page["items"].as_array().unwrap().clone();
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_some() {
            assert_eq!(got.len(), limit, "{url}: a page before the last is full");
        }
        items.extend(got);
        if cursor.is_none() {
            return items;
        }
    }
}

/// Sends a request that must be refused: asserts the status, the problem content type, the
/// field of the first error and that the reason contains `reason`.
async fn refused(r: reqwest::RequestBuilder, status: u16, field: &str, reason: &str) {
    let r = r.send().await.unwrap();
    assert_eq!(r.status().as_u16(), status, "{field}");
    assert_eq!(r.headers()["content-type"], "application/problem+json", "{field}");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], field, "{p}");
    let got = p["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(got.contains(reason), "expected {reason:?} in {p}");
}

#[tokio::test]
async fn catalog_suppliers_offers_and_pagination() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (st, acme) = app
            .post(
                "/api/v1/suppliers",
                json!({"code": "ACME", "name": "Acme Ltd", "contact": "orders@acme.test", "default_currency": "eur"}),
            )
            .await;
        assert_eq!(st, 201, "{backend:?} {acme}");
        assert_eq!(acme["default_currency"], "EUR");
        assert_eq!(acme["active"], true);
        let acme_id = id(&acme);
        let (st, got) = app.get(&format!("/api/v1/suppliers/{acme_id}")).await;
        assert_eq!((st, &got), (200, &acme));

        let (st, patched) = app
            .patch(
                &format!("/api/v1/suppliers/{acme_id}"),
                json!({"contact": null, "active": false, "default_currency": "USD"}),
            )
            .await;
        assert_eq!(st, 200, "{patched}");
        assert_eq!(patched["contact"], Value::Null);
        assert_eq!(patched["active"], false);
        assert_eq!(patched["default_currency"], "USD");
        assert_eq!(patched["name"], "Acme Ltd");
        // The cached read follows the write.
        let (_, got) = app.get(&format!("/api/v1/suppliers/{acme_id}")).await;
        assert_eq!(got, patched);

        // Pagination: walk every page, in creation order; the cached list follows new writes.
        let first = walk(&app, "/api/v1/suppliers", 2).await;
        assert_eq!(first.len(), 1);
        let mut created = vec![acme_id.clone()];
        for i in 0..6 {
            let (st, s) = app
                .post(
                    "/api/v1/suppliers",
                    json!({"code": format!("S{i}"), "name": format!("Supplier {i}"), "default_currency": "EUR"}),
                )
                .await;
            assert_eq!(st, 201, "{s}");
            created.push(id(&s));
        }
        let all: Vec<String> = walk(&app, "/api/v1/suppliers", 2).await.iter().map(id).collect();
        assert_eq!(all, created, "{backend:?}");
        let inactive = walk(&app, "/api/v1/suppliers?active=false", 3).await;
        assert_eq!(inactive.len(), 1);
        assert_eq!(id(&inactive[0]), acme_id);

        // Supplier products.
        let p1 = product(&app, "Widget").await;
        let p2 = product(&app, "Gadget").await;
        let (st, offer) = app
            .post(
                &format!("/api/v1/suppliers/{acme_id}/products"),
                json!({"product_id": p1, "supplier_sku": "W-1", "cost_price": {"amount": "19.9999", "currency": "EUR"},
                       "supplier_stock": 12, "lead_time_days": 3}),
            )
            .await;
        assert_eq!(st, 201, "{offer}");
        assert_eq!(
            offer["cost_price"],
            json!({"amount": "19.9999", "currency": "EUR"})
        );
        assert_eq!(offer["supplier_stock"], 12);
        let offer_id = id(&offer);
        let (st, got) = app.get(&format!("/api/v1/supplier-products/{offer_id}")).await;
        assert_eq!((st, &got), (200, &offer));
        let (st, patched) = app
            .patch(
                &format!("/api/v1/supplier-products/{offer_id}"),
                json!({"cost_price": {"amount": "0.1", "currency": "USD"}, "supplier_stock": null}),
            )
            .await;
        assert_eq!(st, 200, "{patched}");
        assert_eq!(
            patched["cost_price"],
            json!({"amount": "0.10", "currency": "USD"})
        );
        assert_eq!(patched["supplier_stock"], Value::Null);
        assert_eq!(patched["lead_time_days"], 3);
        assert_eq!(patched["supplier_sku"], "W-1");
        let (st, _) = app
            .post(
                &format!("/api/v1/suppliers/{acme_id}/products"),
                json!({"product_id": p2, "supplier_sku": "G-1"}),
            )
            .await;
        assert_eq!(st, 201);
        // The same SKU at another supplier is fine.
        let (st, other) = app
            .post(
                &format!("/api/v1/suppliers/{}/products", created[1]),
                json!({"product_id": p1, "supplier_sku": "W-1"}),
            )
            .await;
        assert_eq!(st, 201, "{other}");
        let offers = walk(&app, &format!("/api/v1/suppliers/{acme_id}/products"), 1).await;
        assert_eq!(offers.len(), 2);
        let (st, of_p1) = app.get(&format!("/api/v1/products/{p1}/offers")).await;
        assert_eq!(st, 200);
        assert_eq!(len(&of_p1), 2, "{of_p1}");

        // Unknown references.
        let nobody = uuid::Uuid::now_v7();
        let (st, p) = app.get(&format!("/api/v1/suppliers/{nobody}/products")).await;
        assert_eq!(st, 404, "{p}");
        let (st, p) = app.get(&format!("/api/v1/products/{nobody}/offers")).await;
        assert_eq!(st, 404, "{p}");
        let (st, p) = app
            .post(
                &format!("/api/v1/suppliers/{acme_id}/products"),
                json!({"product_id": nobody, "supplier_sku": "X"}),
            )
            .await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("product_id")),
            "{p}"
        );

        // Deletes: an offer, then a supplier with its remaining offers.
        let (st, _) = delete(&app, &format!("/api/v1/supplier-products/{offer_id}")).await;
        assert_eq!(st, 204);
        let (st, _) = app.get(&format!("/api/v1/supplier-products/{offer_id}")).await;
        assert_eq!(st, 404);
        let (st, _) = delete(&app, &format!("/api/v1/suppliers/{acme_id}")).await;
        assert_eq!(st, 204);
        let (st, p) = app.get(&format!("/api/v1/suppliers/{acme_id}")).await;
        assert_eq!(st, 404, "{p}");
        let (_, of_p1) = app.get(&format!("/api/v1/products/{p1}/offers")).await;
        assert_eq!(len(&of_p1), 1, "only the other supplier's offer is left");
        let (st, _) = delete(&app, &format!("/api/v1/suppliers/{acme_id}")).await;
        assert_eq!(st, 404);

        // Writes are audited.
        let analytics = pm_storage::analytics::Analytics::new(app.db(Database::Analytics).await);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let actions = loop {
            let rows = analytics.recent_activity(Some(&acme_id), 10).await.unwrap();
            if rows.len() >= 3 || std::time::Instant::now() > until {
                break rows
                    .iter()
                    .map(|a| format!("{} {}", a.action, a.entity))
                    .collect::<Vec<_>>();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(
            actions,
            ["delete supplier", "update supplier", "create supplier"],
            "{backend:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn catalog_brands_crud() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (st, b) = app
            .post("/api/v1/brands", json!({"name": "Samsung", "slug": "samsung"}))
            .await;
        assert_eq!(st, 201, "{backend:?} {b}");
        let bid = id(&b);
        let (st, got) = app.get(&format!("/api/v1/brands/{bid}")).await;
        assert_eq!((st, &got), (200, &b));
        let (st, p) = app
            .post("/api/v1/brands", json!({"name": "Samsung 2", "slug": "samsung"}))
            .await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (409, Some("slug")), "{p}");
        let (st, p) = app
            .post("/api/v1/brands", json!({"name": "Bad", "slug": "Not A Slug"}))
            .await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("slug")), "{p}");
        let (st, b2) = app
            .post("/api/v1/brands", json!({"name": "Apple", "slug": "apple"}))
            .await;
        assert_eq!(st, 201);
        let (st, patched) = app
            .patch(
                &format!("/api/v1/brands/{bid}"),
                json!({"name": "Samsung Electronics"}),
            )
            .await;
        assert_eq!(st, 200, "{patched}");
        assert_eq!(patched["name"], "Samsung Electronics");
        assert_eq!(patched["slug"], "samsung");
        let (_, got) = app.get(&format!("/api/v1/brands/{bid}")).await;
        assert_eq!(
            got["name"], "Samsung Electronics",
            "the cached read follows the write"
        );
        let all = walk(&app, "/api/v1/brands", 1).await;
        assert_eq!(all.iter().map(id).collect::<Vec<_>>(), [bid.clone(), id(&b2)]);
        let (st, _) = delete(&app, &format!("/api/v1/brands/{bid}")).await;
        assert_eq!(st, 204);
        let (st, _) = app.get(&format!("/api/v1/brands/{bid}")).await;
        assert_eq!(st, 404);
        let all = walk(&app, "/api/v1/brands", 10).await;
        assert_eq!(all.len(), 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn catalog_category_tree_moves_and_product_categories() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let mk = |parent: Option<&str>, slug: &str| {
            let body = json!({"parent_id": parent, "name": slug.to_uppercase(), "slug": slug});
            let app = &app;
            async move {
                let (st, c) = app.post("/api/v1/categories", body).await;
                assert_eq!(st, 201, "{c}");
                c
            }
        };
        let electronics = mk(None, "electronics").await;
        let e = id(&electronics);
        let phones = mk(Some(&e), "phones").await;
        let ph = id(&phones);
        let android = mk(Some(&ph), "android").await;
        let an = id(&android);
        let home = mk(None, "home").await;
        let h = id(&home);
        assert_eq!(android["slug_path"], "electronics/phones/android");

        let roots = walk(&app, "/api/v1/categories", 1).await;
        assert_eq!(roots.iter().map(id).collect::<Vec<_>>(), [e.clone(), h.clone()]);
        let children = walk(&app, &format!("/api/v1/categories?parent={e}"), 5).await;
        assert_eq!(children.iter().map(id).collect::<Vec<_>>(), [ph.as_str()]);
        let (st, got) = app.get(&format!("/api/v1/categories/{an}")).await;
        assert_eq!((st, &got), (200, &android));

        // Move phones (with android) under home; the subtree and the lists follow.
        let (st, moved) = app
            .post(&format!("/api/v1/categories/{ph}/move"), json!({"parent_id": h}))
            .await;
        assert_eq!(st, 200, "{moved}");
        assert_eq!(moved["parent_id"], h.as_str());
        assert_eq!(moved["slug_path"], "home/phones");
        let sub: Vec<String> = walk(&app, &format!("/api/v1/categories/{h}/subtree"), 2)
            .await
            .iter()
            .map(id)
            .collect();
        assert_eq!(sub, [ph.clone(), an.clone(), h.clone()], "creation order");
        let (_, a) = app.get(&format!("/api/v1/categories/{an}")).await;
        assert_eq!(a["slug_path"], "home/phones/android");
        let sub_e = walk(&app, &format!("/api/v1/categories/{e}/subtree"), 10).await;
        assert_eq!(sub_e.iter().map(id).collect::<Vec<_>>(), [e.as_str()]);
        let children = walk(&app, &format!("/api/v1/categories?parent={e}"), 5).await;
        assert!(children.is_empty());

        // Rename: a new slug rewrites the slug paths below.
        let (st, renamed) = app
            .patch(
                &format!("/api/v1/categories/{ph}"),
                json!({"name": "Mobiles", "slug": "mobiles"}),
            )
            .await;
        assert_eq!(st, 200, "{renamed}");
        assert_eq!(renamed["slug_path"], "home/mobiles");
        let (_, a) = app.get(&format!("/api/v1/categories/{an}")).await;
        assert_eq!(a["slug_path"], "home/mobiles/android");

        // Back to a root with null.
        let (st, root) = app
            .post(
                &format!("/api/v1/categories/{ph}/move"),
                json!({"parent_id": null}),
            )
            .await;
        assert_eq!(st, 200, "{root}");
        assert_eq!(root["parent_id"], Value::Null);
        assert_eq!(len(&app.get("/api/v1/categories").await.1["items"]), 3);
        let (st, p) = app
            .post(&format!("/api/v1/categories/{ph}/move"), json!({}))
            .await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("parent_id")),
            "{p}"
        );

        // A category with children is not deleted; a leaf is.
        let (st, p) = delete(&app, &format!("/api/v1/categories/{ph}")).await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("id")), "{p}");

        // Product categories.
        let prod = product(&app, "Phone").await;
        let (st, list) = app
            .post(
                &format!("/api/v1/products/{prod}/categories"),
                json!({"category_id": an}),
            )
            .await;
        assert_eq!(st, 200, "{list}");
        assert_eq!(
            list,
            json!([{"product_id": prod, "category_id": an, "taxonomy": "internal"}])
        );
        let (st, list) = app
            .post(
                &format!("/api/v1/products/{prod}/categories"),
                json!({"category_id": e, "taxonomy": "amazon.de"}),
            )
            .await;
        assert_eq!(st, 200, "{list}");
        assert_eq!(len(&list), 2);
        // Twice is no error.
        let (st, list) = app
            .post(
                &format!("/api/v1/products/{prod}/categories"),
                json!({"category_id": an}),
            )
            .await;
        assert_eq!((st, len(&list)), (200, 2));
        let (st, p) = app
            .post(
                &format!("/api/v1/products/{prod}/categories"),
                json!({"category_id": uuid::Uuid::now_v7()}),
            )
            .await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("category_id")),
            "{p}"
        );
        let (st, p) = app
            .post(
                &format!("/api/v1/products/{prod}/categories"),
                json!({"category_id": an, "taxonomy": "has space"}),
            )
            .await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("taxonomy")),
            "{p}"
        );
        let (st, _) = delete(
            &app,
            &format!("/api/v1/products/{prod}/categories/{e}?taxonomy=amazon.de"),
        )
        .await;
        assert_eq!(st, 204);
        let (st, _) = delete(
            &app,
            &format!("/api/v1/products/{prod}/categories/{e}?taxonomy=amazon.de"),
        )
        .await;
        assert_eq!(st, 404);
        let (st, list) = app.get(&format!("/api/v1/products/{prod}/categories")).await;
        assert_eq!((st, len(&list)), (200, 1));

        // Deleting the leaf takes its assignments with it.
        let (st, _) = delete(&app, &format!("/api/v1/categories/{an}")).await;
        assert_eq!(st, 204);
        let (_, list) = app.get(&format!("/api/v1/products/{prod}/categories")).await;
        assert_eq!(len(&list), 0);
        let (st, _) = app.get(&format!("/api/v1/categories/{an}")).await;
        assert_eq!(st, 404);
        let (st, _) = app.get(&format!("/api/v1/categories/{an}/subtree")).await;
        assert_eq!(st, 404);
        let sub: Vec<String> = walk(&app, &format!("/api/v1/categories/{ph}/subtree"), 10)
            .await
            .iter()
            .map(id)
            .collect();
        assert_eq!(sub, [ph.as_str()]);
        app.stop().await;
    }
}

#[tokio::test]
async fn catalog_prices_and_stocks_with_history_on_change_only() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let prod = product(&app, "Priced").await;
        let prices = format!("/api/v1/products/{prod}/prices");
        // A cost price keeps four decimals (selling prices keep the currency's minor units).
        let body = json!({"price_type": "cost", "currency": "EUR", "amount": "19.9999"});
        let (st, set) = put(&app, &prices, body.clone()).await;
        assert_eq!(st, 200, "{backend:?} {set}");
        assert_eq!(set["amount"], "19.9999", "exact, as a string");
        assert_eq!(set["currency"], "EUR");
        assert_eq!(set["price_type"], "cost");
        assert_eq!(set["changed"], true);
        let (_, again) = put(&app, &prices, body).await;
        assert_eq!(again["changed"], false);
        assert_eq!(again["id"], set["id"]);
        let (_, set2) = put(
            &app,
            &prices,
            json!({"price_type": "cost", "currency": "EUR", "amount": "20"}),
        )
        .await;
        assert_eq!(
            (set2["amount"].as_str(), &set2["changed"]),
            (Some("20.00"), &json!(true))
        );
        let (_, jpy) = put(
            &app,
            &prices,
            json!({"price_type": "msrp", "currency": "JPY", "amount": "2500",
                   "valid_from": "2025-01-01T00:00:00Z", "valid_to": "2026-01-01T00:00:00Z"}),
        )
        .await;
        assert_eq!(jpy["amount"], "2500", "{jpy}");
        assert_eq!(jpy["valid_from"], "2025-01-01T00:00:00Z");
        let (st, list) = app.get(&prices).await;
        assert_eq!((st, len(&list)), (200, 2), "{list}");
        assert_eq!(list[0]["amount"], "20.00");

        let history = format!("/api/v1/products/{prod}/price-history");
        let (st, h) = app.get(&history).await;
        assert_eq!(st, 200, "{h}");
        let items = h["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 3, "one row per change, none for the repeat: {h}");
        assert_eq!(items[0]["old"], Value::Null);
        assert_eq!(items[0]["new"], json!({"amount": "19.9999", "currency": "EUR"}));
        assert_eq!(items[1]["old"], json!({"amount": "19.9999", "currency": "EUR"}));
        assert_eq!(items[1]["new"], json!({"amount": "20.00", "currency": "EUR"}));
        assert!(items.iter().all(|i| i["source"] == json!({"kind": "api"})), "{h}");
        // Windows and pages.
        let at = items[1]["changed_at"].as_str().unwrap();
        let (_, since) = app.get(&format!("{history}?from={at}")).await;
        assert_eq!(len(&since["items"]), 2, "{since}");
        let (_, before) = app.get(&format!("{history}?to={at}")).await;
        assert_eq!(len(&before["items"]), 1, "{before}");
        assert_eq!(walk(&app, &history, 2).await, items);
        let (st, p) = app.get(&format!("{history}?from=yesterday")).await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("from")), "{p}");
        let (st, p) = app.get(&format!("{history}?from={at}&to={at}")).await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("to")), "{p}");

        // Delete a price: recorded too.
        let (st, _) = delete(&app, &format!("/api/v1/prices/{}", id(&jpy))).await;
        assert_eq!(st, 204);
        let (st, _) = delete(&app, &format!("/api/v1/prices/{}", id(&jpy))).await;
        assert_eq!(st, 404);
        let (_, h) = app.get(&history).await;
        let last = h["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["new"], Value::Null);
        assert_eq!(last["old"], json!({"amount": "2500", "currency": "JPY"}));
        assert_eq!(len(&app.get(&prices).await.1), 1);

        // Stocks.
        let stock = |w: &str| format!("/api/v1/products/{prod}/stocks/{w}");
        let (st, s) = put(&app, &stock("main"), json!({"quantity": 5})).await;
        assert_eq!(st, 200, "{s}");
        assert_eq!((&s["quantity"], &s["changed"]), (&json!(5), &json!(true)));
        let (_, s) = put(&app, &stock("main"), json!({"quantity": 5})).await;
        assert_eq!(s["changed"], false);
        let (_, s) = put(&app, &stock("main"), json!({"quantity": 0})).await;
        assert_eq!((&s["quantity"], &s["changed"]), (&json!(0), &json!(true)));
        let (_, _) = put(&app, &stock("b-2"), json!({"quantity": 7})).await;
        let (st, list) = app.get(&format!("/api/v1/products/{prod}/stocks")).await;
        assert_eq!(st, 200);
        let whs: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["warehouse"].as_str().unwrap())
            .collect();
        assert_eq!(whs, ["b-2", "main"]);
        let (st, _) = delete(&app, &stock("b-2")).await;
        assert_eq!(st, 204);
        let (st, _) = delete(&app, &stock("b-2")).await;
        assert_eq!(st, 404);
        let (st, h) = app.get(&format!("/api/v1/products/{prod}/stock-history")).await;
        assert_eq!(st, 200, "{h}");
        let changes: Vec<(Value, Value, String)> = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["old"].clone(),
                    c["new"].clone(),
                    c["warehouse"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            changes,
            [
                (Value::Null, json!(5), "main".to_owned()),
                (json!(5), json!(0), "main".to_owned()),
                (Value::Null, json!(7), "b-2".to_owned()),
                (json!(7), Value::Null, "b-2".to_owned()),
            ],
            "{backend:?}"
        );
        assert!(h["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["source"]["kind"] == "api"));
        let at = h["items"][2]["changed_at"].as_str().unwrap().to_owned();
        let (_, since) = app
            .get(&format!(
                "/api/v1/products/{prod}/stock-history?from={at}&limit=1"
            ))
            .await;
        assert_eq!(len(&since["items"]), 1);
        assert!(since["next_cursor"].is_string());

        // An unknown product is a 404 on every sub-resource.
        let nobody = uuid::Uuid::now_v7();
        for path in ["prices", "price-history", "stocks", "stock-history"] {
            let (st, _) = app.get(&format!("/api/v1/products/{nobody}/{path}")).await;
            assert_eq!(st, 404, "{path}");
        }
        let (st, _) = put(
            &app,
            &format!("/api/v1/products/{nobody}/prices"),
            json!({"price_type": "retail", "currency": "EUR", "amount": "1"}),
        )
        .await;
        assert_eq!(st, 404);
        let (st, _) = put(
            &app,
            &format!("/api/v1/products/{nobody}/stocks/main"),
            json!({"quantity": 1}),
        )
        .await;
        assert_eq!(st, 404);
        app.stop().await;
    }
}

#[tokio::test]
async fn catalog_attributes_variants_bundles_and_seo() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let shirt = product(&app, "Shirt").await;
        let red_m = product(&app, "Shirt red M").await;
        let blue_m = product(&app, "Shirt blue M").await;

        // Attributes.
        let attr = |k: &str| format!("/api/v1/products/{shirt}/attributes/{k}");
        let (st, a) = put(
            &app,
            &attr("weight_kg"),
            json!({"type": "number", "value": "0.1"}),
        )
        .await;
        assert_eq!(st, 200, "{backend:?} {a}");
        assert_eq!(a["value"], "0.1");
        assert_eq!(a["type"], "number");
        let (st, _) = put(&app, &attr("organic"), json!({"type": "boolean", "value": true})).await;
        assert_eq!(st, 200);
        let (st, _) = put(
            &app,
            &attr("material"),
            json!({"type": "string", "value": "cotton"}),
        )
        .await;
        assert_eq!(st, 200);
        let (st, _) = put(
            &app,
            &attr("care"),
            json!({"type": "json", "value": {"wash": 30}}),
        )
        .await;
        assert_eq!(st, 200);
        let (_, a) = put(
            &app,
            &attr("material"),
            json!({"type": "string", "value": "linen"}),
        )
        .await;
        assert_eq!(a["value"], "linen");
        let (st, list) = app.get(&format!("/api/v1/products/{shirt}/attributes")).await;
        assert_eq!(st, 200);
        let keys: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["care", "material", "organic", "weight_kg"]);
        assert_eq!(list[0]["value"], json!({"wash": 30}));
        let (st, _) = delete(&app, &attr("care")).await;
        assert_eq!(st, 204);
        let (st, _) = delete(&app, &attr("care")).await;
        assert_eq!(st, 404);
        let (st, p) = put(&app, &attr("bad key"), json!({"type": "string", "value": "x"})).await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("key")), "{p}");
        let (st, p) = put(&app, &attr("n"), json!({"type": "number", "value": 1.5})).await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("value")),
            "{p}"
        );
        let (st, p) = put(&app, &attr("n"), json!({"type": "colour", "value": "x"})).await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("type")), "{p}");
        assert_eq!(
            len(&app.get(&format!("/api/v1/products/{shirt}/attributes")).await.1),
            3
        );

        // Variants.
        let (st, v) = put(
            &app,
            &format!("/api/v1/products/{red_m}/variant"),
            json!({"parent_id": shirt, "axes": {"colour": "red", "size": "M"}}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["parent_id"], shirt.as_str());
        let (st, v2) = put(
            &app,
            &format!("/api/v1/products/{blue_m}/variant"),
            json!({"parent_id": shirt, "axes": {"colour": "blue", "size": "M"}}),
        )
        .await;
        assert_eq!(st, 200, "{v2}");
        let (st, p) = put(
            &app,
            &format!("/api/v1/products/{blue_m}/variant"),
            json!({"parent_id": shirt, "axes": {"colour": "red", "size": "M"}}),
        )
        .await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (409, Some("axes")), "{p}");
        let (st, p) = put(
            &app,
            &format!("/api/v1/products/{blue_m}/variant"),
            json!({"parent_id": shirt, "axes": {"fit": "slim"}}),
        )
        .await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("axes")), "{p}");
        let (st, p) = put(
            &app,
            &format!("/api/v1/products/{shirt}/variant"),
            json!({"parent_id": red_m, "axes": {"colour": "red"}}),
        )
        .await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("parent_id")),
            "{p}"
        );
        let (st, kids) = app.get(&format!("/api/v1/products/{shirt}/variants")).await;
        assert_eq!((st, len(&kids)), (200, 2), "{kids}");
        let (st, got) = app.get(&format!("/api/v1/products/{red_m}/variant")).await;
        assert_eq!((st, &got), (200, &v));
        let (st, _) = delete(&app, &format!("/api/v1/products/{blue_m}/variant")).await;
        assert_eq!(st, 204);
        let (st, _) = app.get(&format!("/api/v1/products/{blue_m}/variant")).await;
        assert_eq!(st, 404);
        assert_eq!(
            len(&app.get(&format!("/api/v1/products/{shirt}/variants")).await.1),
            1
        );

        // Bundles.
        let set = product(&app, "Shirt set").await;
        let bundle = format!("/api/v1/products/{set}/bundle");
        let (st, b) = app
            .post(&bundle, json!({"items": [{"product_id": red_m, "quantity": 2}]}))
            .await;
        assert_eq!(st, 201, "{b}");
        assert_eq!(b["items"], json!([{"product_id": red_m, "quantity": 2}]));
        let (st, p) = app.post(&bundle, json!({"items": []})).await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (409, Some("product_id")),
            "{p}"
        );
        let (st, b) = put(&app, &format!("{bundle}/items/{blue_m}"), json!({"quantity": 1})).await;
        assert_eq!((st, len(&b["items"])), (200, 2), "{b}");
        let (st, b) = put(&app, &format!("{bundle}/items/{red_m}"), json!({"quantity": 3})).await;
        assert_eq!(st, 200);
        assert!(b["items"]
            .as_array()
            .unwrap()
            .contains(&json!({"product_id": red_m, "quantity": 3})));
        let (st, p) = put(&app, &format!("{bundle}/items/{set}"), json!({"quantity": 1})).await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("product_id")),
            "{p}"
        );
        let (st, p) = put(&app, &format!("{bundle}/items/{red_m}"), json!({"quantity": 0})).await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("quantity")),
            "{p}"
        );
        // A bundle inside the set may not contain the set.
        let outer = product(&app, "Outer").await;
        let (st, _) = app
            .post(
                &format!("/api/v1/products/{outer}/bundle"),
                json!({"items": [{"product_id": set, "quantity": 1}]}),
            )
            .await;
        assert_eq!(st, 201);
        let (st, p) = put(&app, &format!("{bundle}/items/{outer}"), json!({"quantity": 1})).await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("product_id")),
            "{p}"
        );
        let (st, b) = delete(&app, &format!("{bundle}/items/{blue_m}")).await;
        assert_eq!((st, len(&b["items"])), (200, 1), "{b}");
        let (st, got) = app.get(&bundle).await;
        assert_eq!((st, &got), (200, &b));
        let (st, _) = delete(&app, &bundle).await;
        assert_eq!(st, 204);
        let (st, _) = app.get(&bundle).await;
        assert_eq!(st, 404);

        // SEO.
        let seo = format!("/api/v1/products/{shirt}/seo");
        let (st, s) = put(
            &app,
            &seo,
            json!({"slug": "cotton-shirt", "meta_title": "Cotton shirt", "meta_description": "Soft."}),
        )
        .await;
        assert_eq!(st, 200, "{s}");
        let (st, got) = app.get(&seo).await;
        assert_eq!((st, &got), (200, &s));
        let (st, by) = app.get("/api/v1/seo/cotton-shirt").await;
        assert_eq!((st, by["product_id"].as_str()), (200, Some(shirt.as_str())));
        let (st, p) = put(
            &app,
            &format!("/api/v1/products/{red_m}/seo"),
            json!({"slug": "cotton-shirt"}),
        )
        .await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (409, Some("slug")), "{p}");
        let (st, s) = put(&app, &seo, json!({"slug": "linen-shirt"})).await;
        assert_eq!((st, &s["meta_title"]), (200, &Value::Null));
        let (st, _) = app.get("/api/v1/seo/cotton-shirt").await;
        assert_eq!(st, 404);
        let (st, _) = delete(&app, &seo).await;
        assert_eq!(st, 204);
        let (st, _) = app.get(&seo).await;
        assert_eq!(st, 404);
        app.stop().await;
    }
}

/// The bad input of the issue: each is a 4xx problem naming the field and the reason, and
/// changes nothing.
#[tokio::test]
async fn catalog_bad_input_is_refused_naming_the_field_and_changes_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let c = &app.client;
        let prod = product(&app, "Target").await;
        let prices = app.url(&format!("/api/v1/products/{prod}/prices"));
        let price = |amount: Value, currency: &str| json!({"price_type": "retail", "currency": currency, "amount": amount});

        // Invalid EAN check digit.
        refused(
            c.post(app.url("/api/v1/products"))
                .json(&json!({"title": "x", "ean": "4006381333932"})),
            422,
            "ean",
            "check digit",
        )
        .await;
        assert_eq!(len(&app.get("/api/v1/products").await.1["items"]), 1);

        // Unknown currency: on a price and on a supplier.
        refused(
            c.put(&prices).json(&price(json!("9.99"), "XYZ")),
            422,
            "currency",
            "iso 4217",
        )
        .await;
        refused(
            c.post(app.url("/api/v1/suppliers"))
                .json(&json!({"code": "ACME", "name": "Acme", "default_currency": "EURO"})),
            422,
            "default_currency",
            "iso 4217",
        )
        .await;
        assert_eq!(len(&app.get("/api/v1/suppliers").await.1["items"]), 0);

        // Malformed decimals, and a JSON number where a decimal string belongs.
        refused(
            c.put(&prices).json(&price(json!("12,50"), "EUR")),
            422,
            "amount",
            "decimal",
        )
        .await;
        refused(
            c.put(&prices).json(&price(json!("1e3"), "EUR")),
            422,
            "amount",
            "decimal",
        )
        .await;
        refused(
            c.put(&prices).json(&price(json!("1.23456"), "EUR")),
            422,
            "amount",
            "decimal places",
        )
        .await;
        refused(
            c.put(&prices).json(&price(json!(12.5), "EUR")),
            422,
            "amount",
            "string",
        )
        .await;
        refused(
            c.put(&prices).json(&price(json!("-1.00"), "EUR")),
            422,
            "amount",
            "negative",
        )
        .await;

        // Unknown fields.
        let mut colour = price(json!("1.00"), "EUR");
        colour["colour"] = json!("red");
        refused(
            c.put(&prices).json(&colour),
            422,
            "colour",
            "unknown field `colour`",
        )
        .await;
        refused(
            c.post(app.url("/api/v1/brands"))
                .json(&json!({"name": "A", "slug": "a", "logo": "x"})),
            422,
            "logo",
            "unknown field",
        )
        .await;
        assert_eq!(len(&app.get("/api/v1/brands").await.1["items"]), 0);

        // Body over the size limit.
        let big = "a".repeat(app.settings.server.body_limit_bytes + 1);
        refused(
            c.put(app.url(&format!("/api/v1/products/{prod}/seo")))
                .json(&json!({"slug": "big", "meta_description": big})),
            413,
            "body",
            "limit",
        )
        .await;
        let (st, _) = app.get(&format!("/api/v1/products/{prod}/seo")).await;
        assert_eq!(st, 404);
        let (_, list) = app.get(&format!("/api/v1/products/{prod}/prices")).await;
        assert_eq!(len(&list), 0, "no price was set: {list}");
        let (_, h) = app.get(&format!("/api/v1/products/{prod}/price-history")).await;
        assert_eq!(len(&h["items"]), 0);

        // Negative stock.
        let stock = app.url(&format!("/api/v1/products/{prod}/stocks/main"));
        refused(
            c.put(&stock).json(&json!({"quantity": -1})),
            422,
            "quantity",
            "must be 0 to",
        )
        .await;
        // Beyond what every backend can sum over warehouses (it made every in_stock list 500).
        refused(
            c.put(&stock).json(&json!({"quantity": i64::MAX})),
            422,
            "quantity",
            "must be 0 to 1000000000",
        )
        .await;
        refused(
            c.put(&stock).json(&json!({"quantity": "5"})),
            422,
            "quantity",
            "invalid type",
        )
        .await;
        let (_, list) = app.get(&format!("/api/v1/products/{prod}/stocks")).await;
        assert_eq!(len(&list), 0);
        let (_, h) = app.get(&format!("/api/v1/products/{prod}/stock-history")).await;
        assert_eq!(len(&h["items"]), 0);

        // A category move that would create a cycle.
        let (_, root) = app
            .post("/api/v1/categories", json!({"name": "Root", "slug": "root"}))
            .await;
        let (_, child) = app
            .post(
                "/api/v1/categories",
                json!({"parent_id": id(&root), "name": "Child", "slug": "child"}),
            )
            .await;
        let (_, grandchild) = app
            .post(
                "/api/v1/categories",
                json!({"parent_id": id(&child), "name": "Leaf", "slug": "leaf"}),
            )
            .await;
        let subtree = format!("/api/v1/categories/{}/subtree", id(&root));
        let before = app.get(&subtree).await.1;
        assert_eq!(len(&before["items"]), 3);
        for target in [&grandchild, &child, &root] {
            refused(
                c.post(app.url(&format!("/api/v1/categories/{}/move", id(&root))))
                    .json(&json!({"parent_id": id(target)})),
                422,
                "parent_id",
                "cycle",
            )
            .await;
        }
        refused(
            c.post(app.url(&format!("/api/v1/categories/{}/move", id(&root))))
                .json(&json!({"parent_id": "not-a-uuid"})),
            422,
            "parent_id",
            "",
        )
        .await;
        assert_eq!(app.get(&subtree).await.1, before);
        let (_, r) = app.get(&format!("/api/v1/categories/{}", id(&root))).await;
        assert_eq!(r, root, "the root did not move");

        // A duplicate SKU for the same supplier.
        let (_, sup) = app
            .post(
                "/api/v1/suppliers",
                json!({"code": "ACME", "name": "Acme", "default_currency": "EUR"}),
            )
            .await;
        let offers = app.url(&format!("/api/v1/suppliers/{}/products", id(&sup)));
        let (st, first) = app
            .post(
                &format!("/api/v1/suppliers/{}/products", id(&sup)),
                json!({"product_id": prod, "supplier_sku": "SKU-1", "cost_price": {"amount": "5.00", "currency": "EUR"}}),
            )
            .await;
        assert_eq!(st, 201, "{first}");
        let other = product(&app, "Other").await;
        refused(
            c.post(&offers)
                .json(&json!({"product_id": other, "supplier_sku": "SKU-1"})),
            409,
            "supplier_sku",
            "SKU-1",
        )
        .await;
        refused(
            c.post(&offers)
                .json(&json!({"product_id": other, "supplier_sku": "SKU-2",
                "cost_price": {"amount": 5, "currency": "EUR"}})),
            422,
            "cost_price.amount",
            "string",
        )
        .await;
        let (_, two) = app
            .post(
                &format!("/api/v1/suppliers/{}/products", id(&sup)),
                json!({"product_id": other, "supplier_sku": "SKU-2"}),
            )
            .await;
        refused(
            c.patch(app.url(&format!("/api/v1/supplier-products/{}", id(&two))))
                .json(&json!({"supplier_sku": "SKU-1"})),
            409,
            "supplier_sku",
            "SKU-1",
        )
        .await;
        let list = walk(&app, &format!("/api/v1/suppliers/{}/products", id(&sup)), 10).await;
        let skus: Vec<&str> = list.iter().map(|o| o["supplier_sku"].as_str().unwrap()).collect();
        assert_eq!(skus, ["SKU-1", "SKU-2"]);
        assert_eq!(list[0], first);

        // Bad ids, limits and cursors.
        let (st, p) = app.get("/api/v1/suppliers/not-a-uuid").await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("id")));
        let (st, p) = app.get("/api/v1/brands?limit=0").await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("limit")));
        let (st, p) = app.get("/api/v1/categories?cursor=zzz").await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("cursor")));
        let (st, p) = app.get("/api/v1/categories?parent=zzz").await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("parent")));
        let (st, p) = app.get("/api/v1/brands?colour=red").await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("colour")),
            "{p}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn catalog_reads_need_catalog_read_and_writes_catalog_write() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let prod = product(&app, "Guarded").await;
        let mut clients = vec![("admin", app.client.clone())];
        for (name, role) in [("mia", "manager"), ("olaf", "operator"), ("vera", "viewer")] {
            let (st, u) = app
                .post(
                    "/api/v1/users",
                    json!({"username": name, "password": "long enough pw", "roles": [role]}),
                )
                .await;
            assert_eq!(st, 201, "{u}");
            let t = app.login(name, "long enough pw").await;
            clients.push((role, app.client_with_token(t["access_token"].as_str().unwrap())));
        }
        clients.push(("anonymous", app.anon.clone()));
        // (method, path, body, expected per role: admin, manager, operator, viewer, anonymous)
        let stock = format!("/api/v1/products/{prod}/stocks/main");
        let cases: Vec<(&str, String, Value, [u16; 5])> = vec![
            (
                "GET",
                "/api/v1/brands".into(),
                Value::Null,
                [200, 200, 200, 200, 401],
            ),
            (
                "GET",
                "/api/v1/categories".into(),
                Value::Null,
                [200, 200, 200, 200, 401],
            ),
            (
                "GET",
                format!("/api/v1/products/{prod}/prices"),
                Value::Null,
                [200, 200, 200, 200, 401],
            ),
            (
                "POST",
                "/api/v1/suppliers".into(),
                json!({"code": "{role}", "name": "S", "default_currency": "EUR"}),
                [201, 201, 403, 403, 401],
            ),
            (
                "PUT",
                stock.clone(),
                json!({"quantity": 1}),
                [200, 200, 403, 403, 401],
            ),
            ("DELETE", stock, Value::Null, [204, 404, 403, 403, 401]),
        ];
        for (method, path, body, expected) in cases {
            for ((role, client), want) in clients.iter().zip(expected) {
                let url = app.url(&path);
                let body = serde_json::from_str::<Value>(&body.to_string().replace("{role}", role)).unwrap();
                let r = match method {
                    "GET" => client.get(url),
                    "POST" => client.post(url).json(&body),
                    "PUT" => client.put(url).json(&body),
                    _ => client.delete(url),
                };
                let r = r.send().await.unwrap();
                assert_eq!(r.status().as_u16(), want, "{backend:?} {role} {method} {path}");
                if want >= 400 {
                    assert_eq!(r.headers()["content-type"], "application/problem+json");
                }
            }
        }
        app.stop().await;
    }
}
