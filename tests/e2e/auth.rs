//! Who may touch what: login, tokens, API keys, the role matrix, the activity log.

use pm_config::Database;
use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app, spawn_app_with, Backend, TestApp, ADMIN_PASSWORD};

async fn post_anon(app: &TestApp, path: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = app.anon.post(app.url(path)).json(&body).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test]
async fn login_refresh_rotation_reuse_and_logout() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        // Wrong password and unknown user: same answer.
        for body in [
            json!({"username": "admin", "password": "wrong"}),
            json!({"username": "ghost", "password": "x"}),
        ] {
            let (st, p, h) = post_anon(&app, "/api/v1/auth/login", body).await;
            assert_eq!(st, 401);
            assert_eq!(p["detail"], "invalid username or password");
            assert_eq!(h["www-authenticate"], "Bearer");
        }
        let t1 = app.login("admin", ADMIN_PASSWORD).await;
        assert_eq!(t1["token_type"], "Bearer");
        assert_eq!(t1["expires_in"], 900);

        let (st, t2, _) = post_anon(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": t1["refresh_token"]}),
        )
        .await;
        assert_eq!(st, 200, "{backend:?} {t2}");
        assert_ne!(t2["refresh_token"], t1["refresh_token"], "rotated");
        let me = app.client_with_token(t2["access_token"].as_str().unwrap());
        let r: Value = me
            .get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["name"], "admin");
        assert_eq!(r["user"]["roles"], json!(["admin"]));

        // The spent token again: refused, and its successor dies with it.
        let (st, p, _) = post_anon(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": t1["refresh_token"]}),
        )
        .await;
        assert_eq!(st, 401, "{p}");
        let (st, _, _) = post_anon(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": t2["refresh_token"]}),
        )
        .await;
        assert_eq!(st, 401, "reuse revokes the family");

        // Logout revokes the session's refresh token.
        let t3 = app.login("admin", ADMIN_PASSWORD).await;
        let r = app
            .client
            .post(app.url("/api/v1/auth/logout"))
            .json(&json!({"refresh_token": t3["refresh_token"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (st, _, _) = post_anon(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": t3["refresh_token"]}),
        )
        .await;
        assert_eq!(st, 401);
        let (st, _, _) = post_anon(&app, "/api/v1/auth/refresh", json!({"refresh_token": "made-up"})).await;
        assert_eq!(st, 401);
        app.stop().await;
    }
}

#[tokio::test]
async fn login_attempts_are_rate_limited() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.auth.login_attempts_per_user_per_minute = 3).await;
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..5 {
        let (st, _, h) = post_anon(
            &app,
            "/api/v1/auth/login",
            json!({"username": "admin", "password": "bad"}),
        )
        .await;
        statuses.push(st);
        if st == 429 {
            retry = h
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
    }
    // Only failures count (spawn_app's own successful login did not): three 401s, then 429.
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    assert!(retry.unwrap() >= 1);
    app.stop().await;
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.auth.access_token_ttl_secs = 1;
        s.auth.clock_leeway_secs = 0;
    })
    .await;
    let t = app.login("admin", ADMIN_PASSWORD).await;
    let token = t["access_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], "AAAA");
    let none = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1])
    };
    for (what, tok) in [
        ("bad signature", bad_sig),
        ("alg none", none),
        ("garbage", "x.y.z".to_owned()),
    ] {
        let r = app
            .client_with_token(&tok)
            .get(app.url("/api/v1/products"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{what}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let r = app.anon.get(app.url("/api/v1/products")).send().await.unwrap();
    assert_eq!(r.status(), 401, "no token");
    // The real token works, then expires.
    let c = app.client_with_token(&token);
    assert_eq!(
        c.get(app.url("/api/v1/products")).send().await.unwrap().status(),
        200
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = c.get(app.url("/api/v1/products")).send().await.unwrap();
        if r.status() == 401 {
            let p: Value = r.json().await.unwrap();
            assert_eq!(p["detail"], "access token expired");
            break;
        }
        assert!(std::time::Instant::now() < until, "token never expired");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn role_matrix() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let clients = [
            ("admin", app.client.clone()),
            ("manager", app.user_client("mia", &["manager"]).await),
            ("operator", app.user_client("olaf", &["operator"]).await),
            ("viewer", app.user_client("vera", &["viewer"]).await),
            ("anonymous", app.anon.clone()),
        ];
        // (route, expected status per role: admin, manager, operator, viewer, anonymous)
        let cases: [(&str, &str, [u16; 5]); 7] = [
            ("GET", "/api/v1/products", [200, 200, 200, 200, 401]),
            ("POST", "/api/v1/products", [201, 201, 403, 403, 401]),
            ("GET", "/admin/actors", [200, 403, 403, 403, 401]),
            ("GET", "/api/v1/users", [200, 403, 403, 403, 401]),
            ("GET", "/api/v1/api-keys", [200, 403, 403, 403, 401]),
            ("GET", "/api/v1/notifications", [200, 200, 200, 200, 401]),
            ("GET", "/health", [200, 200, 200, 200, 200]),
        ];
        for (method, path, expected) in cases {
            for ((role, client), want) in clients.iter().zip(expected) {
                let r = match method {
                    "GET" => client.get(app.url(path)).send().await.unwrap(),
                    _ => client
                        .post(app.url(path))
                        .json(&json!({"title": format!("by {role}")}))
                        .send()
                        .await
                        .unwrap(),
                };
                assert_eq!(r.status().as_u16(), want, "{backend:?} {role} {method} {path}");
                if want >= 400 {
                    assert_eq!(r.headers()["content-type"], "application/problem+json");
                }
            }
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn scoped_api_keys_work_until_revoked_and_are_shown_once() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (st, k) = app
            .post(
                "/api/v1/api-keys",
                json!({"name": "shop sync", "scopes": ["catalog:read"]}),
            )
            .await;
        assert_eq!(st, 201, "{k}");
        let key = k["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("pmk_"));
        let (_, list) = app.get("/api/v1/api-keys").await;
        assert!(
            list[0].get("key").is_none() && list[0].get("key_hash").is_none(),
            "{list}"
        );

        let c = app.client_with_token(&key);
        assert_eq!(
            c.get(app.url("/api/v1/products")).send().await.unwrap().status(),
            200
        );
        let r = c
            .post(app.url("/api/v1/products"))
            .json(&json!({"title": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "read-only key");
        assert_eq!(
            c.get(app.url("/api/v1/notifications"))
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        let forged = format!("{}x", &key[..key.len() - 1]);
        assert_eq!(
            app.client_with_token(&forged)
                .get(app.url("/api/v1/products"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );

        let id = k["id"].as_str().unwrap();
        assert_eq!(
            app.client
                .delete(app.url(&format!("/api/v1/api-keys/{id}")))
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        assert_eq!(
            c.get(app.url("/api/v1/products")).send().await.unwrap().status(),
            401,
            "revoked"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn user_management_refuses_bad_input_and_deactivation_ends_sessions() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let cases = [
            (
                json!({"username": "x", "password": "long enough pw"}),
                422,
                "username",
            ),
            (json!({"username": "weak", "password": "short"}), 422, "password"),
            (
                json!({"username": "ghost", "password": "long enough pw", "roles": ["root"]}),
                422,
                "roles",
            ),
            (
                json!({"username": "admin", "password": "long enough pw"}),
                409,
                "username",
            ),
        ];
        for (body, status, field) in cases {
            let (st, p) = app.post("/api/v1/users", body.clone()).await;
            assert_eq!(st, status, "{backend:?} {body} {p}");
            assert_eq!(p["errors"][0]["field"], field, "{p}");
        }
        let c = app.user_client("dora", &["viewer"]).await;
        let tokens = app.login("dora", "long enough pw").await;
        let (_, users) = app.get("/api/v1/users").await;
        let dora = users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == "dora")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (st, u) = app
            .patch(&format!("/api/v1/users/{dora}"), json!({"is_active": false}))
            .await;
        assert_eq!((st, u["is_active"].as_bool()), (200, Some(false)));
        let (st, p, _) = post_anon(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
        assert_eq!(st, 401, "{p}");
        let (st, p, _) = post_anon(
            &app,
            "/api/v1/auth/login",
            json!({"username": "dora", "password": "long enough pw"}),
        )
        .await;
        // The same answer as a wrong password: it must not confirm that the password is right.
        assert_eq!(
            (st, p["detail"].as_str()),
            (401, Some("invalid username or password"))
        );
        // Her access token is revoked at once, not when it expires.
        assert_eq!(
            c.get(app.url("/api/v1/products")).send().await.unwrap().status(),
            401
        );

        // Custom roles: created, used, refused changes to built-ins.
        let (st, role) = app
            .post(
                "/api/v1/roles",
                json!({"name": "auditor", "permissions": ["catalog:read"]}),
            )
            .await;
        assert_eq!(st, 201, "{role}");
        let (_, roles) = app.get("/api/v1/roles").await;
        let admin_role = roles
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "admin")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app
            .client
            .delete(app.url(&format!("/api/v1/roles/{admin_role}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let (st, _) = app
            .post("/api/v1/roles", json!({"name": "bad", "permissions": ["root"]}))
            .await;
        assert_eq!(st, 422);
        let (_, perms) = app.get("/api/v1/permissions").await;
        assert_eq!(perms.as_array().unwrap().len(), 7, "{perms}");

        // Settings.
        let r = app
            .client
            .put(app.url("/api/v1/settings/default_currency"))
            .json(&json!({"value": "EUR"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (_, settings) = app.get("/api/v1/settings").await;
        assert_eq!(settings[0]["value"], "EUR");
        app.stop().await;
    }
}

#[tokio::test]
async fn notifications_list_and_mark_read() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, me) = app.get("/api/v1/auth/me").await;
        let admin: uuid::Uuid = me["id"].as_str().unwrap().parse().unwrap();
        let core = pm_storage::core::Core::new(app.db(Database::Core).await);
        let n1 = core
            .notify(admin, "import", "import finished", Some("1200 rows"))
            .await
            .unwrap();
        core.notify(admin, "import", "import failed", None).await.unwrap();
        let (st, list) = app.get("/api/v1/notifications?unread=true").await;
        assert_eq!(st, 200);
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        let r = app
            .client
            .post(app.url(&format!("/api/v1/notifications/{n1}/read")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (_, list) = app.get("/api/v1/notifications?unread=true").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let (_, marked) = app.post("/api/v1/notifications/read-all", json!({})).await;
        assert_eq!(marked["marked"], 1);
        let r = app
            .client
            .post(app.url(&format!("/api/v1/notifications/{}/read", uuid::Uuid::now_v7())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        app.stop().await;
    }
}

#[tokio::test]
async fn every_write_lands_in_the_activity_log() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, p) = app.post("/api/v1/products", json!({"title": "audited"})).await;
        let id = p["id"].as_str().unwrap().to_owned();
        app.patch(&format!("/api/v1/products/{id}"), json!({"title": "audited 2"}))
            .await;
        app.client
            .delete(app.url(&format!("/api/v1/products/{id}")))
            .send()
            .await
            .unwrap();
        let analytics = pm_storage::analytics::Analytics::new(app.db(Database::Analytics).await);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let rows = loop {
            let rows = analytics.recent_activity(Some(&id), 10).await.unwrap();
            if rows.len() == 3 || std::time::Instant::now() > until {
                break rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let actions: Vec<&str> = rows.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["delete", "update", "create"], "{backend:?}");
        assert!(rows
            .iter()
            .all(|a| a.actor_name == "admin" && a.entity == "product" && a.user_id.is_some()));
        assert!(rows.iter().all(|a| a.request_id.is_some()));
        app.stop().await;
    }
}

#[tokio::test]
async fn bootstrap_admin_password_is_generated_once_into_a_private_file() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.auth.bootstrap_admin_password = None).await;
    let path = app.settings.storage.data_dir.join("initial-admin-password");
    let password = std::fs::read_to_string(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(password.len() >= 20);
    app.login("admin", &password).await;
    app.stop().await;
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.auth.metrics_token = Some(pm_config::Secret::new("scrape-me"))
    })
    .await;
    assert_eq!(
        app.anon.get(app.url("/metrics")).send().await.unwrap().status(),
        401
    );
    let r = app
        .client_with_token("scrape-me")
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}
