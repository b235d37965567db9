//! Supplier imports (issue 8, first slice): a file in object storage through the `import.file`
//! job into the catalog, its rejects recorded with their lines, and a second run that changes
//! nothing.

use pm_config::Database;
use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app, TestApp};

/// Puts `body` into the imports bucket of the app's object store.
async fn put_file(app: &TestApp, key: &str, body: Vec<u8>) {
    let store = pm_storage::object_store::from_settings(&app.settings)
        .await
        .unwrap();
    let stream: pm_storage::object_store::ByteStream =
        Box::pin(futures::stream::iter(vec![Ok(bytes::Bytes::from(body))]));
    let bucket = app.settings.object_store.buckets.imports.clone();
    store.put(&bucket, key, stream, None).await.unwrap();
}

/// Enqueues an import of `key` for `supplier` and waits until it ends; the job as it ended.
async fn import(app: &TestApp, supplier: &str, key: &str) -> Value {
    let (st, job) = app
        .post(
            "/api/v1/jobs/imports",
            json!({"kind": "import.file", "payload": {"supplier_id": supplier, "key": key,
                "bucket": app.settings.object_store.buckets.imports}}),
        )
        .await;
    assert!(st == 201 || st == 202, "{st} {job}");
    let path = format!("/api/v1/jobs/imports/{}", job["id"].as_str().unwrap());
    let mut last = Value::Null;
    let ended = app
        .wait_for(&path, |_, j| {
            last = j.clone();
            matches!(j["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
        })
        .await;
    assert!(ended, "the import did not end: {last}");
    last
}

#[tokio::test]
async fn a_windows_1252_supplier_file_lands_with_its_rejects_and_a_rerun_changes_nothing() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (st, supplier) = app
            .post(
                "/api/v1/suppliers",
                json!({"code": "dupont", "name": "Dupont SA"}),
            )
            .await;
        assert_eq!(st, 201, "{supplier}");
        let supplier = supplier["id"].as_str().unwrap().to_owned();
        let text = "Tarif Dupont 2026\r\n\r\nCode EAN;Désignation;Marque;Prix HT;Quantité\r\n\
                    4006381333931;Stylo à bille bleu;Stabilo;1,50;12\r\n\
                    0887276302195;Câble USB-C 2 m;Anker;12,90;0\r\n\
                    4006381333932;Mauvais EAN;X;1,00;1\r\n\
                    3.65275E+11;Arrondi par Excel;X;1,00;1\r\n\
                    ;Sans code;X;1,00;1\r\n\
                    8.87276302195E11;Câble (même EAN, écrit par Excel);Anker;12,90;3\r\n";
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(text);
        put_file(&app, "2026/12/04/dupont.csv", bytes.into_owned()).await;

        let job = import(&app, &supplier, "2026/12/04/dupont.csv").await;
        assert_eq!(job["status"], "succeeded", "{backend:?}: {job}");
        let r = &job["result"];
        assert_eq!(r["file"]["encoding"], "windows-1252", "{r}");
        assert_eq!(r["file"]["delimiter"], ";", "{r}");
        let c = &r["counters"];
        // The same EAN twice in the file: the later row wins, the earlier is superseded.
        assert_eq!(
            (
                c["rows_read"].as_u64(),
                c["created"].as_u64(),
                c["superseded"].as_u64(),
                c["rejected"].as_u64()
            ),
            (Some(6), Some(2), Some(1), Some(3)),
            "{c}"
        );
        let (_, hits) = app.get("/api/v1/products/search?q=0887276302195").await;
        assert_eq!(
            hits["items"][0]["product"]["title"], "Câble (même EAN, écrit par Excel)",
            "{hits}"
        );
        // The catalog: titles, the cost price in the supplier's currency, the stock.
        let (_, hits) = app.get("/api/v1/products/search?q=4006381333931").await;
        let pen = &hits["items"][0]["product"];
        assert_eq!(pen["title"], "Stylo à bille bleu", "{hits}");
        let pen_id = pen["id"].as_str().unwrap();
        let (_, prices) = app.get(&format!("/api/v1/products/{pen_id}/prices")).await;
        assert_eq!(prices[0]["price_type"], "cost", "{prices}");
        assert_eq!(prices[0]["amount"], "1.50", "{prices}");
        assert_eq!(prices[0]["currency"], "EUR", "{prices}");
        let (_, stocks) = app.get(&format!("/api/v1/products/{pen_id}/stocks")).await;
        assert_eq!(
            (stocks[0]["warehouse"].as_str(), stocks[0]["quantity"].as_i64()),
            (Some("dupont"), Some(12)),
            "{stocks}"
        );
        // The rejects, with their physical lines and reasons.
        let imports = pm_storage::imports::Imports::new(app.db(Database::Imports).await);
        let job_id = job["id"].as_str().unwrap().parse().unwrap();
        let errors = imports.errors(job_id, 10, None).await.unwrap().items;
        let got: Vec<(i64, &str)> = errors.iter().map(|e| (e.line, e.code.as_str())).collect();
        assert_eq!(
            got,
            [(6, "bad_gtin"), (7, "digits_lost"), (8, "missing_key")],
            "{backend:?}"
        );
        assert_eq!(errors[0].raw[1], "Mauvais EAN");

        // The same file again: nothing to write, no new price or stock history.
        let again = import(&app, &supplier, "2026/12/04/dupont.csv").await;
        let c = &again["result"]["counters"];
        assert_eq!(
            (
                c["created"].as_u64(),
                c["unchanged"].as_u64(),
                c["prices_changed"].as_u64(),
                c["stocks_changed"].as_u64()
            ),
            (Some(0), Some(2), Some(0), Some(0)),
            "{again}"
        );
        // A dry run of a file with one known and one new EAN: a forecast, nothing written.
        let dry = "EAN;Désignation\n4006381333931;Stylo (nouveau nom)\n4011200296908;Cahier\n";
        put_file(&app, "2026/12/04/dry.csv", dry.as_bytes().to_vec()).await;
        let (_, job) = app
            .post(
                "/api/v1/jobs/imports",
                json!({"kind": "import.file", "payload": {"supplier_id": supplier, "key": "2026/12/04/dry.csv",
                    "bucket": app.settings.object_store.buckets.imports, "dry_run": true}}),
            )
            .await;
        let path = format!("/api/v1/jobs/imports/{}", job["id"].as_str().unwrap());
        let mut last = Value::Null;
        assert!(
            app.wait_for(&path, |_, j| {
                last = j.clone();
                j["status"] == "succeeded"
            })
            .await,
            "{last}"
        );
        let c = &last["result"]["counters"];
        assert_eq!(
            (
                c["would_create"].as_u64(),
                c["would_update"].as_u64(),
                c["created"].as_u64()
            ),
            (Some(1), Some(1), Some(0)),
            "{last}"
        );
        assert_eq!(
            last["result"]["sample"][0]["title"], "Stylo (nouveau nom)",
            "{last}"
        );
        let (_, hits) = app.get("/api/v1/products/search?q=4011200296908").await;
        assert_eq!(
            hits["items"].as_array().map(Vec::len),
            Some(0),
            "a dry run writes nothing: {hits}"
        );
        // A file that is not one: the job fails with the reason, nothing is written.
        put_file(
            &app,
            "2026/12/04/garbage.csv",
            b"PK\x03\x04\x00\x00 not a sheet".to_vec(),
        )
        .await;
        let bad = import(&app, &supplier, "2026/12/04/garbage.csv").await;
        assert_eq!(bad["status"], "failed", "{bad}");
        assert!(
            bad["last_error"].as_str().unwrap().contains("spreadsheet"),
            "{bad}"
        );
        app.stop().await;
    }
}

/// `POST /suppliers/{id}/imports`: a multipart upload, then the job and its rejects over the
/// API; bad uploads are refused with the reason.
#[tokio::test]
async fn an_uploaded_tsv_is_imported_and_its_rejects_are_listed() {
    for backend in backends() {
        let app = crate::helpers::spawn_app_with(backend, |s| s.imports.max_upload_bytes = 4096).await;
        let (_, supplier) = app
            .post(
                "/api/v1/suppliers",
                json!({"code": "mode", "name": "Mode SARL", "default_currency": "EUR"}),
            )
            .await;
        let sid = supplier["id"].as_str().unwrap();
        let upload = |c: &reqwest::Client, name: &str, body: Vec<u8>, query: &str| {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(body).file_name(name.to_owned()),
            );
            c.post(app.url(&format!("/api/v1/suppliers/{sid}/imports{query}")))
                .multipart(form)
                .send()
        };
        // Fashion without barcodes: keyed by SKU; a UTF-8 BOM, tabs, a multi-line cell.
        let tsv = "\u{FEFF}ref\tnom\tdescription\tprix\tstock\n\
                   TS-RED-M\tT-shirt rouge M\t\"Coton bio,\nlavable à 30°\"\t19,90\t7\n\
                   TS-RED-L\t\tsans nom\t19,90\t2\n\
                   TS-BLU-M\tT-shirt bleu M\tcoton\t-3\t1\n";
        let r = upload(&app.client, "collection.tsv", tsv.as_bytes().to_vec(), "")
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{backend:?}");
        let job: Value = r.json().await.unwrap();
        assert_eq!(job["kind"], "import.file");
        assert_eq!(job["group_key"], format!("supplier:{sid}"));
        let path = format!("/api/v1/imports/jobs/{}", job["id"].as_str().unwrap());
        let mut last = Value::Null;
        assert!(
            app.wait_for(&path, |_, j| {
                last = j.clone();
                j["status"] == "succeeded" || j["status"] == "failed"
            })
            .await,
            "{last}"
        );
        assert_eq!(last["status"], "succeeded", "{last}");
        let c = &last["result"]["counters"];
        assert_eq!(
            (c["created"].as_u64(), c["rejected"].as_u64()),
            (Some(1), Some(2)),
            "{c}"
        );
        assert_eq!(
            last["payload"]["sha256"].as_str().map(str::len),
            Some(64),
            "{last}"
        );
        let (_, page) = app.get(&format!("{path}/errors?limit=1")).await;
        assert_eq!(
            (
                page["items"][0]["line"].as_u64(),
                page["items"][0]["code"].as_str()
            ),
            (Some(4), Some("missing_title")),
            "{page}"
        );
        let next = page["next_cursor"].as_str().unwrap();
        let (_, page) = app.get(&format!("{path}/errors?limit=1&cursor={next}")).await;
        assert_eq!(
            (
                page["items"][0]["line"].as_u64(),
                page["items"][0]["code"].as_str()
            ),
            (Some(5), Some("bad_number")),
            "{page}"
        );
        // The rejects as a CSV to fix and send again: the file's header, line and reason.
        let r = app
            .client
            .get(app.url(&format!("{path}/errors.csv")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
        let text = r.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ref,nom,description,prix,stock,line,reason", "{text}");
        assert!(
            lines[1].starts_with("TS-RED-L,,sans nom,\"19,90\",2,4,missing_title"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("TS-BLU-M,T-shirt bleu M,coton,-3,1,5,bad_number"),
            "{text}"
        );
        assert_eq!(lines.len(), 3, "{text}");
        // Whoever started it is told that rows were rejected.
        let (_, notes) = app.get("/api/v1/notifications").await;
        let note = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "import_rejects")
            .cloned()
            .unwrap_or(Value::Null);
        assert!(
            note["title"]
                .as_str()
                .is_some_and(|t| t.contains("collection.tsv") && t.contains("2 rejected")),
            "{notes}"
        );
        // Listed by supplier; a finished job cannot be cancelled.
        let (_, jobs) = app.get(&format!("/api/v1/imports/jobs?supplier_id={sid}")).await;
        assert_eq!(jobs["items"][0]["id"], last["id"], "{jobs}");
        let (_, none) = app
            .get(&format!(
                "/api/v1/imports/jobs?supplier_id={}",
                uuid::Uuid::now_v7()
            ))
            .await;
        assert_eq!(none["items"].as_array().map(Vec::len), Some(0), "{none}");
        let (st, c) = app.post(&format!("{path}/cancel"), json!({})).await;
        assert_eq!(
            (st, c["outcome"].as_str()),
            (409, Some("already_finished")),
            "{c}"
        );
        let (_, hits) = app.get("/api/v1/products/search?q=ts-red-m").await;
        // The supplier's offer under its own reference, with its stock.
        let shirt = hits["items"][0]["product"]["id"].as_str().unwrap().to_owned();
        let (_, offers) = app.get(&format!("/api/v1/products/{shirt}/offers")).await;
        assert_eq!(
            (
                offers[0]["supplier_sku"].as_str(),
                offers[0]["supplier_stock"].as_i64()
            ),
            (Some("TS-RED-M"), Some(7)),
            "{offers}"
        );
        assert_eq!(offers[0]["last_seen_import"], last["id"], "{offers}");
        assert_eq!(
            hits["items"][0]["product"]["description"], "Coton bio,\nlavable à 30°",
            "{hits}"
        );

        // Headers nobody could guess: the job fails saying what it needs; with a mapping by
        // header name, the same file lands.
        let odd = "col_a;col_b\n4006381333931;Stylo\n".as_bytes().to_vec();
        let run = |mapping: Option<&str>| {
            let app = &app;
            let mut form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(odd.clone()).file_name("odd.csv"),
            );
            if let Some(m) = mapping {
                form = form.text("mapping", m.to_owned());
            }
            let req = app
                .client
                .post(app.url(&format!("/api/v1/suppliers/{sid}/imports")))
                .multipart(form);
            async move {
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 202);
                let job: Value = r.json().await.unwrap();
                let path = format!("/api/v1/imports/jobs/{}", job["id"].as_str().unwrap());
                let mut last = Value::Null;
                assert!(
                    app.wait_for(&path, |_, j| {
                        last = j.clone();
                        j["status"] == "succeeded" || j["status"] == "failed"
                    })
                    .await
                );
                last
            }
        };
        let failed = run(None).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        let why = failed["last_error"].as_str().unwrap();
        assert!(
            why.contains("a mapping is needed") && why.contains("col_b"),
            "{why}"
        );
        let done = run(Some(r#"{"col_a": "ean", "col_b": "title"}"#)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(
            done["result"]["counters"]["updated"].as_u64().unwrap_or(0)
                + done["result"]["counters"]["created"].as_u64().unwrap_or(0)
                + done["result"]["counters"]["unchanged"].as_u64().unwrap_or(0),
            1,
            "{done}"
        );
        let r = upload(&app.client, "a.csv", b"x".to_vec(), "").await.unwrap();
        assert_eq!(r.status(), 202);
        let bad = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(b"a".to_vec()))
            .text("mapping", r#"{"col_a": "colour"}"#);
        let r = app
            .client
            .post(app.url(&format!("/api/v1/suppliers/{sid}/imports")))
            .multipart(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "an unknown field in the mapping");
        // Refused: too large (the 413 quotes the limit), no file field, an unknown supplier,
        // a bad option, and a viewer.
        let r = upload(&app.client, "big.csv", vec![b'x'; 5000], "")
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert!(r.text().await.unwrap().contains("4096"));
        let r = app
            .client
            .post(app.url(&format!("/api/v1/suppliers/{sid}/imports")))
            .multipart(reqwest::multipart::Form::new().text("other", "x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let r = upload(&app.client, "a.csv", b"x".to_vec(), "?encoding=klingon")
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        // Not multipart at all: a 400 in problem+json.
        let r = app
            .client
            .post(app.url(&format!("/api/v1/suppliers/{sid}/imports")))
            .json(&json!({"file": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let nobody = uuid::Uuid::now_v7();
        let r = app
            .client
            .post(app.url(&format!("/api/v1/suppliers/{nobody}/imports")))
            .multipart(
                reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"a".to_vec())),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let viewer = app.user_client("vivi", &["viewer"]).await;
        assert_eq!(
            upload(&viewer, "a.csv", b"a;b\n".to_vec(), "")
                .await
                .unwrap()
                .status(),
            403
        );
        // Another user's import job is not theirs to see.
        let (st, _) = {
            let r = viewer.get(app.url(&path)).send().await.unwrap();
            (r.status().as_u16(), ())
        };
        assert_eq!(st, 404);
        app.stop().await;
    }
}
