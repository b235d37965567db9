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

/// A product's version is its ETag: reads can be revalidated (304) and writes made
/// conditional (412 when someone wrote in between).
#[tokio::test]
async fn etags_make_reads_cheap_and_concurrent_edits_safe() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let r = app
            .client
            .post(app.url("/api/v1/products"))
            .json(&json!({"title": "Lamp"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["etag"], "\"1\"", "{backend:?}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["version"], 1);
        let url = app.url(&format!("/api/v1/products/{}", p["id"].as_str().unwrap()));

        let r = app.client.get(&url).send().await.unwrap();
        let tag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(tag, "\"1\"");
        // Revalidation: the same version is a 304 without a body.
        let r = app
            .client
            .get(&url)
            .header("if-none-match", &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
        assert!(r.bytes().await.unwrap().is_empty());

        // Two editors read version 1; the first write wins, the second is told.
        let patch = |title: &str, if_match: Option<&str>| {
            let mut req = app.client.patch(&url).json(&json!({ "title": title }));
            if let Some(m) = if_match {
                req = req.header("if-match", m);
            }
            req.send()
        };
        let r = patch("Lamp (first)", Some(&tag)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["etag"], "\"2\"");
        let r = patch("Lamp (second)", Some(&tag)).await.unwrap();
        assert_eq!(r.status(), 412);
        assert_eq!(
            r.headers()["etag"],
            "\"2\"",
            "the current tag comes with the refusal"
        );
        let e: Value = r.json().await.unwrap();
        assert!(e["detail"].as_str().unwrap().contains("version 2"), "{e}");
        let (_, now) = app
            .get(&format!("/api/v1/products/{}", p["id"].as_str().unwrap()))
            .await;
        assert_eq!(now["title"], "Lamp (first)", "nothing was overwritten");
        // The new ETag is revalidated after the write (the cache was emptied).
        let r = app
            .client
            .get(&url)
            .header("if-none-match", &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), r.headers()["etag"].to_str().unwrap()),
            (200, "\"2\"")
        );
        // `*`, a list naming the current tag, and no header at all are accepted; a weak tag
        // never matches; garbage is a 400.
        assert_eq!(patch("a", Some("*")).await.unwrap().status(), 200);
        assert_eq!(patch("b", Some("\"1\", \"3\"")).await.unwrap().status(), 200);
        assert_eq!(patch("c", None).await.unwrap().status(), 200);
        assert_eq!(patch("d", Some("W/\"5\"")).await.unwrap().status(), 412);
        assert_eq!(patch("e", Some("5")).await.unwrap().status(), 400);
        // Deleting under a stale tag is refused too; under the current one it goes.
        let r = app
            .client
            .delete(&url)
            .header("if-match", "\"1\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412);
        let r = app
            .client
            .delete(&url)
            .header("if-match", "\"5\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        app.stop().await;
    }
}

/// `?count=true` adds the list's total; bulk upserts say which items changed nothing and key
/// items without an EAN by their SKU; titles sort and search without regard to case or
/// accents on both backends.
#[tokio::test]
async fn counts_unchanged_upserts_and_titles_alike_on_every_backend() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let items = json!({"items": [
            {"title": "Éclair au chocolat", "sku": "ECL-1"},
            {"title": "eclair vanille", "sku": "ECL-2"},
            {"title": "Zèbre en peluche", "sku": "ZEB-1"},
            {"title": "alpaga", "sku": "ALP-1"},
        ]});
        let (st, r) = app.post("/api/v1/products/bulk", items.clone()).await;
        assert_eq!((st, r["created"].as_u64()), (200, Some(4)), "{backend:?}: {r}");
        // The same file again: nothing changes, nothing is written.
        let (_, again) = app.post("/api/v1/products/bulk", items).await;
        assert_eq!(
            (
                again["unchanged"].as_u64(),
                again["updated"].as_u64(),
                again["created"].as_u64()
            ),
            (Some(4), Some(0), Some(0)),
            "{again}"
        );
        assert_eq!(again["results"][0]["result"], "unchanged", "{again}");
        // A changed title for one SKU (another case): that product is updated, not duplicated.
        let (_, changed) = app
            .post(
                "/api/v1/products/bulk",
                json!({"items": [{"title": "Alpaga (grand)", "sku": "alp-1"}]}),
            )
            .await;
        assert_eq!(changed["updated"].as_u64(), Some(1), "{changed}");
        assert_eq!(changed["results"][0]["id"], r["results"][3]["id"], "{changed}");

        let (_, page) = app.get("/api/v1/products?sort=title&count=true&limit=2").await;
        assert_eq!(
            (page["total"].as_u64(), page["total_exact"].as_bool()),
            (Some(4), Some(true)),
            "{page}"
        );
        let titles: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["Alpaga (grand)", "Éclair au chocolat"], "{page}");
        let (_, page) = app.get("/api/v1/products?sort=-title&limit=1").await;
        assert_eq!(page["items"][0]["title"], "Zèbre en peluche", "{page}");
        assert!(page.get("total").is_none(), "no count unless asked: {page}");
        let (_, page) = app.get("/api/v1/products?count=true&sku=ZEB-1").await;
        assert_eq!(page["total"].as_u64(), Some(1), "{page}");
        let (st, e) = app.get("/api/v1/products?count=maybe").await;
        assert_eq!(
            (st, e["errors"][0]["field"].as_str()),
            (422, Some("count")),
            "{e}"
        );

        // Search ignores accents and case, and an exact SKU in any case comes first.
        let (_, hits) = app.get("/api/v1/products/search?q=eclair").await;
        assert_eq!(hits["items"].as_array().unwrap().len(), 2, "{backend:?}: {hits}");
        let (_, hits) = app.get("/api/v1/products/search?q=z%C3%A8bre").await;
        assert_eq!(hits["items"][0]["product"]["title"], "Zèbre en peluche", "{hits}");
        let (_, hits) = app.get("/api/v1/products/search?q=ecl-2").await;
        assert_eq!(hits["items"][0]["match_kind"], "sku", "{hits}");
        app.stop().await;
    }
}
