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
