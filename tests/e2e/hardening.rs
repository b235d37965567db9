//! Defects found by trying the service from outside (issue 7), each with the test that
//! reproduced it.

use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app_with};

/// A valid EAN-13 from its first twelve digits.
pub fn ean13(twelve: u64) -> String {
    let digits = format!("{twelve:012}");
    let sum: u32 = digits
        .chars()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap() * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

#[tokio::test]
async fn concurrent_bulk_upserts_never_fail_for_being_concurrent() {
    for backend in backends() {
        // As many bulk writes at once as the default settings allow.
        let app = spawn_app_with(backend, |s| {
            s.database.pools.catalog = 8;
            s.actors.bulk_concurrency = 4;
        })
        .await;
        let mut calls = Vec::new();
        for c in 0..20u64 {
            let (client, url) = (app.client.clone(), app.url("/api/v1/products/bulk"));
            let items: Vec<Value> = (0..200u64)
                .map(|i| json!({"title": format!("c{c} i{i}"), "ean": ean13(400_000_000_000 + i * 100 + c)}))
                .collect();
            calls.push(tokio::spawn(async move {
                let r = client
                    .post(url)
                    .json(&json!({"items": items}))
                    .send()
                    .await
                    .unwrap();
                let st = r.status().as_u16();
                (st, r.text().await.unwrap())
            }));
        }
        for c in calls {
            let (st, body) = c.await.unwrap();
            assert_eq!(st, 200, "{backend:?}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["failed"], 0, "{backend:?}: {body}");
        }
        app.stop().await;
    }
}

/// The text rule everywhere: a NUL (PostgreSQL's 500) or another control character is a 422
/// naming the field; in a bulk it fails its item alone; at login it is a failed login.
#[tokio::test]
async fn control_characters_are_refused_with_the_field_on_every_backend() {
    for backend in backends() {
        let app = crate::helpers::spawn_app(backend).await;
        let (st, _) = app
            .anon
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "adm\u{0}in", "password": "x"}))
            .send()
            .await
            .map(|r| (r.status().as_u16(), ()))
            .unwrap();
        assert_eq!(st, 401, "{backend:?}");
        for (body, field) in [
            (json!({"title": "nul\u{0}title"}), "title"),
            (json!({"title": "ok", "description": "a\u{0}b"}), "description"),
            (json!({"title": "ok", "sku": "S\u{1b}[31m"}), "sku"),
            (json!({"title": "\u{7}\u{7}"}), "title"),
            (json!({"title": "\u{200B}\u{200B}"}), "title"),
            (
                json!({"title": "ok", "attributes": {"color": "re\u{0}d"}}),
                "attributes.color",
            ),
        ] {
            let (st, p) = app.post("/api/v1/products", body.clone()).await;
            assert_eq!(st, 422, "{backend:?} {body}: {p}");
            assert_eq!(p["errors"][0]["field"], field, "{backend:?}: {p}");
        }
        let too_many: serde_json::Map<String, Value> =
            (0..15_000).map(|i| (format!("k{i}"), json!(i))).collect();
        let (st, p) = app
            .post("/api/v1/products", json!({"title": "ok", "attributes": too_many}))
            .await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("attributes")),
            "{p}"
        );
        // in a bulk, the bad item fails alone
        let (st, r) = app
            .post(
                "/api/v1/products/bulk",
                json!({"items": [
                    {"title": "good", "ean": ean13(410_000_000_001)},
                    {"title": "bad\u{0}", "ean": ean13(410_000_000_002)},
                ]}),
            )
            .await;
        assert_eq!(st, 200, "{backend:?}: {r}");
        assert_eq!(
            (r["created"].as_u64(), r["failed"].as_u64()),
            (Some(1), Some(1)),
            "{r}"
        );
        // API key names and settings
        let (st, p) = app
            .post(
                "/api/v1/api-keys",
                json!({"name": "k\u{0}", "scopes": ["catalog:read"]}),
            )
            .await;
        assert_eq!((st, p["errors"][0]["field"].as_str()), (422, Some("name")), "{p}");
        let r = app
            .client
            .put(app.url("/api/v1/settings/catalog.note"))
            .json(&json!({"value": {"text": "a\u{0}b"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{backend:?}");
        let (st, p) = app
            .post(
                "/api/v1/users",
                json!({"username": "mail", "password": "long enough pw", "email": "not-an-email"}),
            )
            .await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("email")),
            "{p}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn api_key_lifetimes_are_bounded_and_never_already_expired() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    for days in [0u64, 4_294_967_295, 3651] {
        let (st, p) = app
            .post(
                "/api/v1/api-keys",
                json!({"name": "k", "scopes": ["catalog:read"], "expires_in_days": days}),
            )
            .await;
        assert_eq!(
            (st, p["errors"][0]["field"].as_str()),
            (422, Some("expires_in_days")),
            "{days}: {p}"
        );
    }
    let (st, p) = app
        .post(
            "/api/v1/api-keys",
            json!({"name": "k", "scopes": ["catalog:read"], "expires_in_days": 30}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    app.stop().await;
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_removed() {
    for backend in backends() {
        let app = crate::helpers::spawn_app(backend).await;
        let (_, me) = app.get("/api/v1/auth/me").await;
        let admin = me["id"]
            .as_str()
            .or(me["user"]["id"].as_str())
            .unwrap()
            .to_owned();
        let path = format!("/api/v1/users/{admin}");
        let (st, p) = app.patch(&path, json!({"is_active": false})).await;
        assert_eq!(st, 409, "{backend:?}: {p}");
        assert!(p.to_string().contains("no active admin"), "{p}");
        let (st, _) = app.patch(&path, json!({"roles": ["viewer"]})).await;
        assert_eq!(st, 409);
        // an admin API key deleting the only admin user
        let (st, k) = app
            .post("/api/v1/api-keys", json!({"name": "ops", "scopes": ["admin"]}))
            .await;
        assert_eq!(st, 201, "{k}");
        let r = app
            .client_with_token(k["key"].as_str().unwrap())
            .delete(app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        // with a second admin, the first may go
        let (st, _) = app
            .post(
                "/api/v1/users",
                json!({"username": "second", "password": "long enough pw", "roles": ["admin"]}),
            )
            .await;
        assert_eq!(st, 201);
        let (st, p) = app.patch(&path, json!({"roles": ["viewer"]})).await;
        assert_eq!(st, 200, "{p}");
        app.stop().await;
    }
}

#[tokio::test]
async fn small_protocol_defects_are_gone() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    // trailing data after the JSON body
    let r = app
        .client
        .post(app.url("/api/v1/products"))
        .header("content-type", "application/json")
        .body(r#"{"title":"x"} trailing"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // the bearer scheme is case-insensitive
    let token = app.login("admin", crate::helpers::ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for scheme in ["BEARER", "bearer", "Bearer"] {
        let r = app
            .anon
            .get(app.url("/api/v1/auth/me"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    // a trashed product's slug does not resolve
    let (_, p) = app.post("/api/v1/products", json!({"title": "sluggy"})).await;
    let id = p["id"].as_str().unwrap();
    let r = app
        .client
        .put(app.url(&format!("/api/v1/products/{id}/seo")))
        .json(&json!({"slug": "sluggy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/api/v1/seo/sluggy").await.0, 200);
    app.client
        .delete(app.url(&format!("/api/v1/products/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(app.get("/api/v1/seo/sluggy").await.0, 404);
    // permission before the body: a viewer's malformed write is a 403, not a schema lesson
    let viewer = app.user_client("vicky", &["viewer"]).await;
    let r = viewer
        .post(app.url("/api/v1/products"))
        .json(&json!({"nonsense": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.stop().await;
}

/// Deactivation, a role change, logout and deletion end a user's access tokens at once.
#[tokio::test]
async fn revocation_reaches_access_tokens_at_once() {
    for backend in backends() {
        let app = crate::helpers::spawn_app(backend).await;
        let mk = |name: &'static str, roles: Vec<&'static str>| {
            let app = &app;
            async move { app.user(name, &roles).await }
        };
        let status = |t: &Value, path: &str| {
            let c = app.client_with_token(t["access_token"].as_str().unwrap());
            let url = app.url(path);
            async move { c.get(url).send().await.unwrap().status().as_u16() }
        };
        // a role downgrade: the old token (with catalog:write) is refused; a refresh gives the
        // new permissions
        let (id, t) = mk("rita", vec!["manager"]).await;
        assert_eq!(status(&t, "/api/v1/products").await, 200);
        app.patch(&format!("/api/v1/users/{id}"), json!({"roles": ["viewer"]}))
            .await;
        assert_eq!(status(&t, "/api/v1/products").await, 401, "{backend:?}");
        let (st, fresh, _) = {
            let r = app
                .anon
                .post(app.url("/api/v1/auth/refresh"))
                .json(&json!({"refresh_token": t["refresh_token"]}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap(), ())
        };
        assert_eq!(st, 200, "{fresh}");
        assert_eq!(status(&fresh, "/api/v1/products").await, 200);
        let (_, me) = {
            let c = app.client_with_token(fresh["access_token"].as_str().unwrap());
            let r = c.get(app.url("/api/v1/auth/me")).send().await.unwrap();
            ((), r.json::<Value>().await.unwrap())
        };
        assert_eq!(me["permissions"], json!(["catalog:read", "imports:read"]), "{me}");
        // logout ends the current access token too
        let c = app.client_with_token(fresh["access_token"].as_str().unwrap());
        let r = c
            .post(app.url("/api/v1/auth/logout"))
            .json(&json!({"refresh_token": fresh["refresh_token"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(status(&fresh, "/api/v1/auth/me").await, 401);
        // deletion: 401, not 404
        let (id, t) = mk("dave", vec!["viewer"]).await;
        let r = app
            .client
            .delete(app.url(&format!("/api/v1/users/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(status(&t, "/api/v1/auth/me").await, 401, "{backend:?}");
        app.stop().await;
    }
}

/// A product never points at a brand or category that does not exist, and one in use cannot
/// be deleted.
#[tokio::test]
async fn references_to_brands_and_categories_never_dangle() {
    for backend in backends() {
        let app = crate::helpers::spawn_app(backend).await;
        let nowhere = uuid::Uuid::now_v7();
        let (_, p) = app.post("/api/v1/products", json!({"title": "ref"})).await;
        let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
        for field in ["brand_id", "primary_category_id"] {
            let (st, e) = app.patch(&path, json!({ field: nowhere })).await;
            assert_eq!(
                (st, e["errors"][0]["field"].as_str()),
                (422, Some(field)),
                "{backend:?}: {e}"
            );
            let (st, e) = app
                .post("/api/v1/products", json!({"title": "x", field: nowhere}))
                .await;
            assert_eq!((st, e["errors"][0]["field"].as_str()), (422, Some(field)), "{e}");
        }
        let (st, r) = app
            .post(
                "/api/v1/products/bulk",
                json!({"items": [{"title": "b", "ean": ean13(420_000_000_001), "brand_id": nowhere}]}),
            )
            .await;
        assert_eq!((st, r["failed"].as_u64()), (200, Some(1)), "{r}");
        // in use: refused
        let (st, brand) = app
            .post("/api/v1/brands", json!({"name": "Acme", "slug": "acme"}))
            .await;
        assert_eq!(st, 201, "{brand}");
        let (st, cat) = app
            .post("/api/v1/categories", json!({"name": "Tools", "slug": "tools"}))
            .await;
        assert_eq!(st, 201, "{cat}");
        let (st, _) = app
            .patch(
                &path,
                json!({"brand_id": brand["id"], "primary_category_id": cat["id"]}),
            )
            .await;
        assert_eq!(st, 200);
        for url in [
            format!("/api/v1/brands/{}", brand["id"].as_str().unwrap()),
            format!("/api/v1/categories/{}", cat["id"].as_str().unwrap()),
        ] {
            let r = app.client.delete(app.url(&url)).send().await.unwrap();
            assert_eq!(r.status(), 409, "{backend:?} {url}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn values_that_look_valid_but_are_not_are_refused() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let (st, e) = app
        .post("/api/v1/products", json!({"title": "z", "ean": "0000000000000"}))
        .await;
    assert_eq!((st, e["errors"][0]["field"].as_str()), (422, Some("ean")), "{e}");
    let (_, p) = app.post("/api/v1/products", json!({"title": "priced"})).await;
    let prices = app.url(&format!("/api/v1/products/{}/prices", p["id"].as_str().unwrap()));
    for (amount, currency, field) in [
        ("10.00", "XAU", "currency"),
        ("10.00", "XTS", "currency"),
        ("1", "XXX", "currency"),
        ("300.5", "JPY", "amount"),
    ] {
        let r = app
            .client
            .put(&prices)
            .json(&json!({"price_type": "retail", "amount": amount, "currency": currency}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{amount} {currency}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["errors"][0]["field"], field, "{e}");
    }
    let r = app
        .client
        .put(&prices)
        .json(&json!({"price_type": "retail", "amount": "300", "currency": "JPY"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn query_errors_name_the_parameter_and_limits_quote_the_right_figure() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    for (q, field) in [
        ("updated_since=yesterday", "updated_since"),
        ("supplier_id=nope", "supplier_id"),
        ("limit=many", "limit"),
        ("limit=0", "limit"),
        ("min_price=3", "min_price"),
        ("sort=price", "sort"),
        ("currency=EUR", "currency"),
    ] {
        let (st, e) = app.get(&format!("/api/v1/products?{q}")).await;
        assert_eq!(st, 422, "{q}: {e}");
        assert_eq!(e["errors"][0]["field"], field, "{q}: {e}");
    }
    let (_, e) = app.get("/api/v1/products?sort=price").await;
    assert!(e.to_string().contains("created, updated_at, title"), "{e}");
    // a bulk body over its own limit quotes that limit
    let big = "x".repeat(33 * 1024 * 1024);
    let r = app
        .client
        .post(app.url("/api/v1/products/bulk"))
        .header("content-type", "application/json")
        .body(format!("{{\"items\":[{{\"title\":\"{big}\"}}]}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let e: Value = r.json().await.unwrap();
    assert!(e.to_string().contains(&(32 * 1024 * 1024).to_string()), "{e}");
    app.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_and_the_data_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let dir = &app.settings.storage.data_dir;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700);
    for db in ["core.db", "catalog.db", "analytics.db"] {
        assert_eq!(mode(&dir.join(db)), 0o600, "{db}");
    }
    app.stop().await;
}

/// Messages that misled now say what happened.
#[tokio::test]
async fn messages_say_what_happened() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    // refreshing after logout: revoked, not "already used"
    let t = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    let c = app.client_with_token(t["access_token"].as_str().unwrap());
    let r = c
        .post(app.url("/api/v1/auth/logout"))
        .json(&json!({"refresh_token": t["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .anon
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": t["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert!(e["detail"].as_str().unwrap().contains("revoked"), "{e}");
    // the client's own session was logged out too: log in again for the rest
    let app_client = app.client_with_token(
        app.login("admin", crate::helpers::ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap(),
    );
    // a second bundle on one product
    let mk = |title: &'static str| {
        let c = app_client.clone();
        let url = app.url("/api/v1/products");
        async move {
            let p: Value = c
                .post(url)
                .json(&json!({"title": title}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            p["id"].as_str().unwrap().to_owned()
        }
    };
    let (kit, part) = (mk("kit").await, mk("part").await);
    let bundle = app.url(&format!("/api/v1/products/{kit}/bundle"));
    let body = json!({"items": [{"product_id": part, "quantity": 2}]});
    let r = app_client.post(&bundle).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = app_client.post(&bundle).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await.unwrap();
    assert!(e.to_string().contains("already is a bundle"), "{e}");
    // a bulk item that is not an object is named by its index
    let r: Value = app_client
        .post(app.url("/api/v1/products/bulk"))
        .json(&json!({"items": [{"title": "ok", "ean": ean13(430_000_000_001)}, 42]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["results"][1]["field"], "items[1]", "{r}");
    app.stop().await;
}

/// CORS when configured, self-service password change, the activity log for admins.
#[tokio::test]
async fn cors_password_change_and_the_activity_log() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.server.cors_origins = vec!["https://admin.example.com".into()];
    })
    .await;
    let r = app
        .anon
        .get(app.url("/health"))
        .header("origin", "https://admin.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    let r = app
        .anon
        .get(app.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // password change: wrong current refused; right one gives a fresh pair, old sessions end
    let old = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    let (st, e) = app
        .post(
            "/api/v1/auth/password",
            json!({"current_password": "nope", "new_password": "another long password"}),
        )
        .await;
    assert_eq!(
        (st, e["errors"][0]["field"].as_str()),
        (422, Some("current_password")),
        "{e}"
    );
    let (st, pair) = app
        .post(
            "/api/v1/auth/password",
            json!({"current_password": crate::helpers::ADMIN_PASSWORD, "new_password": "another long password"}),
        )
        .await;
    assert_eq!(st, 200, "{pair}");
    let r = app
        .anon
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": old["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let fresh = app.client_with_token(pair["access_token"].as_str().unwrap());
    let page: Value = fresh
        .get(app.url("/api/v1/activity?entity=user&limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["entity"], "user", "{page}");
    let r = fresh
        .get(app.url("/api/v1/activity?since=yesterday"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    app.stop().await;
}
