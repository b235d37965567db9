//! What users of such a service expect and issue 7 found missing: defaults a person would not
//! know, cost prices kept from viewers, counts, optimistic concurrency, bulk upserts that say
//! what they changed, titles ordered and searched alike on every backend.

use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app, spawn_app_with};

#[tokio::test]
async fn slugs_and_currencies_default_sensibly() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        // A category without a slug gets one from its name, unique among its siblings.
        let (st, tv) = app
            .post("/api/v1/categories", json!({"name": "Télévisions & Vidéo"}))
            .await;
        assert_eq!(
            (st, tv["slug"].as_str()),
            (201, Some("televisions-video")),
            "{backend:?}: {tv}"
        );
        let (st, tv2) = app
            .post("/api/v1/categories", json!({"name": "Televisions / video"}))
            .await;
        assert_eq!(
            (st, tv2["slug"].as_str()),
            (201, Some("televisions-video-2")),
            "{tv2}"
        );
        let (st, child) = app
            .post(
                "/api/v1/categories",
                json!({"name": "Télévisions & Vidéo", "parent_id": tv["id"]}),
            )
            .await;
        assert_eq!(
            (st, child["slug_path"].as_str()),
            (201, Some("televisions-video/televisions-video")),
            "{child}"
        );
        // Nothing to make a slug from: the answer says to give one.
        let (st, e) = app.post("/api/v1/categories", json!({"name": "?!"})).await;
        assert_eq!((st, e["errors"][0]["field"].as_str()), (422, Some("slug")), "{e}");
        // A given slug is still checked and kept.
        let (st, e) = app
            .post("/api/v1/categories", json!({"name": "X", "slug": "Not A Slug"}))
            .await;
        assert_eq!(st, 422, "{e}");
        // Brands alike.
        let (st, b) = app.post("/api/v1/brands", json!({"name": "L'Oréal Paris"})).await;
        assert_eq!((st, b["slug"].as_str()), (201, Some("l-oreal-paris")), "{b}");

        // A supplier without a currency gets the catalog default: EUR.
        let (st, s) = app
            .post("/api/v1/suppliers", json!({"code": "acme", "name": "Acme"}))
            .await;
        assert_eq!((st, s["default_currency"].as_str()), (201, Some("EUR")), "{s}");
        app.stop().await;
    }
    // ... or the configured one.
    let app = spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.catalog.default_currency = pm_domain::Currency::parse("CHF").unwrap();
    })
    .await;
    let (st, s) = app
        .post("/api/v1/suppliers", json!({"code": "ch", "name": "Swiss"}))
        .await;
    assert_eq!((st, s["default_currency"].as_str()), (201, Some("CHF")), "{s}");
    app.stop().await;
    // A default that is not money is refused when the settings load, naming the key.
    let e = pm_config::load_from(None, vec![("PM__CATALOG__DEFAULT_CURRENCY".into(), "XAU".into())])
        .map(|_| ())
        .expect_err("xau is no default currency");
    assert!(e.to_string().contains("PM__CATALOG__DEFAULT_CURRENCY"), "{e}");
}

/// `catalog:read` alone sees no cost price: not in prices, history, offers or as a filter.
#[tokio::test]
async fn viewers_see_no_cost_prices_unless_granted() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, p) = app.post("/api/v1/products", json!({"title": "Margins"})).await;
        let pid = p["id"].as_str().unwrap().to_owned();
        for (t, a) in [("cost", "4.10"), ("retail", "9.90")] {
            let r = app
                .client
                .put(app.url(&format!("/api/v1/products/{pid}/prices")))
                .json(&json!({"price_type": t, "currency": "EUR", "amount": a}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{backend:?}");
        }
        let (_, sup) = app
            .post("/api/v1/suppliers", json!({"code": "w", "name": "Wholesale"}))
            .await;
        let (st, offer) = app
            .post(
                &format!("/api/v1/suppliers/{}/products", sup["id"].as_str().unwrap()),
                json!({"product_id": pid, "supplier_sku": "W-1", "cost_price": {"amount": "4.10", "currency": "EUR"}}),
            )
            .await;
        assert_eq!(st, 201, "{offer}");

        let viewer = app.user_client("vic", &["viewer"]).await;
        let get = |c: &reqwest::Client, path: String| {
            let req = c.get(app.url(&path));
            async move {
                let r = req.send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let types = |v: &Value, key: &str| -> Vec<String> {
            let items = v.as_array().or_else(|| v["items"].as_array()).unwrap();
            let mut t: Vec<String> = items
                .iter()
                .map(|p| p[key].as_str().unwrap().to_owned())
                .collect();
            t.sort();
            t
        };
        // The admin sees both; the viewer only the retail price.
        let (_, all) = get(&app.client, format!("/api/v1/products/{pid}/prices")).await;
        assert_eq!(types(&all, "price_type"), ["cost", "retail"], "{all}");
        let (st, seen) = get(&viewer, format!("/api/v1/products/{pid}/prices")).await;
        assert_eq!(
            (st, types(&seen, "price_type")),
            (200, vec!["retail".to_owned()]),
            "{seen}"
        );
        let (_, h) = get(&viewer, format!("/api/v1/products/{pid}/price-history")).await;
        assert_eq!(types(&h, "price_type"), ["retail"], "{h}");
        let (_, h) = get(&app.client, format!("/api/v1/products/{pid}/price-history")).await;
        assert_eq!(types(&h, "price_type"), ["cost", "retail"], "{h}");
        // Offers: the cost is null for the viewer, there for the admin.
        let (_, o) = get(&viewer, format!("/api/v1/products/{pid}/offers")).await;
        assert_eq!(o[0]["supplier_sku"], "W-1", "{o}");
        assert!(o[0]["cost_price"].is_null(), "{o}");
        let (_, o) = get(&app.client, format!("/api/v1/products/{pid}/offers")).await;
        assert_eq!(o[0]["cost_price"]["amount"], "4.10", "{o}");
        let (_, o) = get(
            &viewer,
            format!("/api/v1/suppliers/{}/products", sup["id"].as_str().unwrap()),
        )
        .await;
        assert!(o["items"][0]["cost_price"].is_null(), "{o}");
        // Filtering by cost tells costs apart: refused.
        let (st, e) = get(
            &viewer,
            "/api/v1/products?price_type=cost&currency=EUR&price_max=5".into(),
        )
        .await;
        assert_eq!(st, 403, "{e}");
        assert!(
            e["detail"].as_str().unwrap().contains("catalog:read_costs"),
            "{e}"
        );
        let (st, e) = get(
            &app.client,
            "/api/v1/products?price_type=cost&currency=EUR&price_max=5".into(),
        )
        .await;
        assert_eq!((st, e["items"].as_array().map(Vec::len)), (200, Some(1)), "{e}");
        // An operator (and a manager) has the permission; an API key may be given it alone.
        let operator = app.user_client("ops", &["operator"]).await;
        let (_, seen) = get(&operator, format!("/api/v1/products/{pid}/prices")).await;
        assert_eq!(types(&seen, "price_type"), ["cost", "retail"], "{seen}");
        let (st, k) = app
            .post(
                "/api/v1/api-keys",
                json!({"name": "costs", "scopes": ["catalog:read", "catalog:read_costs"]}),
            )
            .await;
        assert_eq!(st, 201, "{k}");
        let keyed = app.client_with_token(k["key"].as_str().unwrap());
        let (_, seen) = get(&keyed, format!("/api/v1/products/{pid}/prices")).await;
        assert_eq!(types(&seen, "price_type"), ["cost", "retail"], "{seen}");
        app.stop().await;
    }
}
