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

/// Creates the supplier `code` (named `name`); its id.
async fn new_supplier(app: &TestApp, code: &str, name: &str) -> String {
    let (st, supplier) = app
        .post("/api/v1/suppliers", json!({"code": code, "name": name}))
        .await;
    assert_eq!(st, 201, "{supplier}");
    supplier["id"].as_str().unwrap().to_owned()
}

/// Enqueues an import of `key` for `supplier` and waits until it ends; the job as it ended.
async fn import(app: &TestApp, supplier: &str, key: &str) -> Value {
    import_with(app, supplier, key, false).await
}

/// [`import`], or its dry run.
async fn import_with(app: &TestApp, supplier: &str, key: &str, dry_run: bool) -> Value {
    let (st, job) = app
        .post(
            "/api/v1/jobs/imports",
            json!({"kind": "import.file", "payload": {"supplier_id": supplier, "key": key,
                "bucket": app.settings.object_store.buckets.imports, "dry_run": dry_run}}),
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
        // The suggestion it went ahead with, saved as the supplier's template.
        let (st, saved) = app
            .post(
                &format!("/api/v1/imports/jobs/{}/template", job["id"].as_str().unwrap()),
                json!({"name": "dupont tarif"}),
            )
            .await;
        assert_eq!(st, 201, "{saved}");
        let targets: Vec<&str> = saved["template"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["target"].as_str().unwrap())
            .collect();
        assert!(targets.contains(&"ean") && targets.contains(&"title"), "{saved}");
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
        // A dry run of that file: both rows would be unchanged.
        let last = import_with(&app, &supplier, "2026/12/04/dupont.csv", true).await;
        assert_eq!(last["status"], "succeeded", "{last}");
        let c = &last["result"]["counters"];
        assert_eq!(
            (
                c["would_be_unchanged"].as_u64(),
                c["would_update"].as_u64(),
                c["would_create"].as_u64()
            ),
            (Some(2), Some(0), Some(0)),
            "{last}"
        );
        // A dry run of a file with one known and one new EAN: a forecast, nothing written.
        let dry = "EAN;Désignation\n4006381333931;Stylo (nouveau nom)\n4011200296908;Cahier\n";
        put_file(&app, "2026/12/04/dry.csv", dry.as_bytes().to_vec()).await;
        let last = import_with(&app, &supplier, "2026/12/04/dry.csv", true).await;
        assert_eq!(last["status"], "succeeded", "{last}");
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
        // And by creation time: a day, or RFC 3339 times; [from, to).
        let today = chrono::Utc::now().date_naive();
        let (yesterday, tomorrow) = (today.pred_opt().unwrap(), today.succ_opt().unwrap());
        let count = |query: String| {
            let app = &app;
            let url = format!("/api/v1/imports/jobs?supplier_id={sid}&{query}");
            async move {
                let (st, page) = app.get(&url).await;
                assert_eq!(st, 200, "{query}: {page}");
                page["items"].as_array().map(Vec::len).unwrap()
            }
        };
        assert_eq!(count(format!("from={today}&to={today}")).await, 1);
        assert_eq!(count(format!("from={tomorrow}")).await, 0);
        assert_eq!(count(format!("to={yesterday}")).await, 0);
        let created = last["created_at"].as_str().unwrap().replace('+', "%2B");
        assert_eq!(count(format!("from={created}")).await, 1, "{last}");
        assert_eq!(count(format!("to={created}")).await, 0, "{last}");
        let (st, bad) = app.get("/api/v1/imports/jobs?from=yesterday").await;
        assert_eq!(st, 422, "{bad}");
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
        // Without a mapping the job waits for one (awaiting_mapping), saying what it needs and
        // listing the file's columns; given one (and saved as a template), it runs.
        let r = app
            .client
            .post(app.url(&format!("/api/v1/suppliers/{sid}/imports")))
            .multipart(reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(odd.clone()).file_name("odd.csv"),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let waiting: Value = r.json().await.unwrap();
        let wpath = format!("/api/v1/imports/jobs/{}", waiting["id"].as_str().unwrap());
        let mut last = Value::Null;
        assert!(
            app.wait_for(&wpath, |_, j| {
                last = j.clone();
                j["import_status"] == "awaiting_mapping" || j["status"] == "failed"
            })
            .await,
            "{last}"
        );
        assert_eq!(last["import_status"], "awaiting_mapping", "{backend:?}: {last}");
        assert_eq!(last["progress"]["headers"], json!(["col_a", "col_b"]), "{last}");
        assert!(
            last["progress"]["missing"]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            "{last}"
        );
        // A mapping naming a column the file lacks is refused at the edge; a good one resumes.
        let (st, _) = app
            .post(
                &format!("{wpath}/mapping"),
                json!({"mapping": {"col_a": "colour"}}),
            )
            .await;
        assert_eq!(st, 422);
        let (st, resumed) = app
            .post(
                &format!("{wpath}/mapping"),
                json!({"mapping": {"col_a": "ean", "col_b": "title"}, "save_as": "odd columns"}),
            )
            .await;
        assert_eq!(st, 202, "{resumed}");
        assert!(
            app.wait_for(&wpath, |_, j| {
                last = j.clone();
                j["status"] == "succeeded" || j["status"] == "failed"
            })
            .await,
            "{last}"
        );
        assert_eq!(last["status"], "succeeded", "{last}");
        let (st, again) = app
            .post(
                &format!("{wpath}/mapping"),
                json!({"mapping": {"col_a": "ean", "col_b": "title"}}),
            )
            .await;
        assert_eq!(st, 409, "{again}");
        let (_, templates) = app
            .get(&format!("/api/v1/suppliers/{sid}/mapping-templates"))
            .await;
        assert_eq!(templates[0]["name"], "odd columns", "{templates}");
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
        // JSON is for a URL source: without one it is refused naming the field.
        let r = app
            .client
            .post(app.url(&format!("/api/v1/suppliers/{sid}/imports")))
            .json(&json!({"file": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        // Neither multipart nor JSON: a 400 in problem+json.
        let r = app
            .client
            .post(app.url(&format!("/api/v1/suppliers/{sid}/imports")))
            .header("content-type", "text/plain")
            .body("ean;title")
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

/// Uploads `body` as `name` for `supplier` with `query`, waits until the import ends; the job
/// as the imports API shows it.
pub(crate) async fn upload_and_wait(
    app: &TestApp,
    supplier: &str,
    name: &str,
    body: Vec<u8>,
    query: &str,
) -> Value {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(body).file_name(name.to_owned()),
    );
    let r = app
        .client
        .post(app.url(&format!("/api/v1/suppliers/{supplier}/imports{query}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let path = format!("/api/v1/imports/jobs/{}", job["id"].as_str().unwrap());
    let mut last = Value::Null;
    assert!(
        app.wait_for(&path, |_, j| {
            last = j.clone();
            matches!(j["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
        })
        .await,
        "{last}"
    );
    last
}

/// The product with this EAN, as searched.
pub(crate) async fn by_ean(app: &TestApp, ean: &str) -> Value {
    let (_, hits) = app.get(&format!("/api/v1/products/search?q={ean}")).await;
    hits["items"][0]["product"].clone()
}

async fn price_of(app: &TestApp, product: &str) -> Value {
    let (_, prices) = app.get(&format!("/api/v1/products/{product}/prices")).await;
    prices[0]["amount"].clone()
}

async fn stock_of(app: &TestApp, product: &str) -> Value {
    let (_, stocks) = app.get(&format!("/api/v1/products/{product}/stocks")).await;
    stocks[0]["quantity"].clone()
}

/// A saved template with transforms, a full import that sets the missing product's stock to
/// 0, the rollback of each import in turn (values back, created products to the trash), the
/// day's statistics, and the supplier's session in `/admin/actors`.
#[tokio::test]
async fn templates_full_imports_rollbacks_and_statistics() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let sid = new_supplier(&app, "acme", "Acme").await;
        // A bad template is refused naming the rule; a good one is saved.
        let (st, bad) = app
            .post(
                &format!("/api/v1/suppliers/{sid}/mapping-templates"),
                json!({"name": "broken", "template": {"columns": [
                    {"source": "Code", "target": "ean"},
                    {"source": "Libellé", "target": "title"},
                    {"source": "Prix", "target": "cost_price", "transforms": [{"op": "multiply", "by": "abc"}]}]}}),
            )
            .await;
        assert_eq!(st, 422, "{bad}");
        let (st, template) = app
            .post(
                &format!("/api/v1/suppliers/{sid}/mapping-templates"),
                json!({"name": "acme tarif", "template": {"columns": [
                    {"source": "Code", "target": "ean"},
                    {"source": "Libellé", "target": "title", "transforms": [{"op": "trim"}, {"op": "case", "to": "upper"}]},
                    {"source": "Prix", "target": "cost_price", "transforms": [
                        {"op": "decimal_comma"}, {"op": "multiply", "by": "1.2"}, {"op": "round", "places": 2}]},
                    {"source": "Qté", "target": "stock"}]}}),
            )
            .await;
        assert_eq!(st, 201, "{template}");
        let tid = template["id"].as_str().unwrap();
        let first = "Code;Libellé;Prix;Qté\n\
                     4006381333931; stylo ;10,00;5\n\
                     0887276302195;cable;2,50;7\n\
                     5901234123457;agrafeuse;1,00;9\n";
        let one = upload_and_wait(&app, &sid, "t1.csv", first.into(), &format!("?template_id={tid}")).await;
        assert_eq!(one["import_status"], "succeeded", "{backend:?}: {one}");
        assert_eq!(one["result"]["counters"]["created"], 3, "{one}");
        // Its log says what it found and how it ended; its file is recorded with what was
        // detected.
        let (st, log) = app
            .get(&format!(
                "/api/v1/imports/jobs/{}/logs",
                one["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(st, 200, "{log}");
        let lines: Vec<&str> = log["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap())
            .collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("reading a csv file") && l.contains("with the template")),
            "{lines:?}"
        );
        assert!(
            lines.last().is_some_and(|l| l.starts_with("finished")),
            "{lines:?}"
        );
        assert_eq!(
            (
                log["file"]["format"].as_str(),
                log["file"]["delimiter"].as_str(),
                log["file"]["name"].as_str()
            ),
            (Some("csv"), Some(";"), Some("t1.csv")),
            "{log}"
        );
        let pen = by_ean(&app, "4006381333931").await;
        assert_eq!(pen["title"], "STYLO", "{pen}");
        let pen_id = pen["id"].as_str().unwrap().to_owned();
        assert_eq!(price_of(&app, &pen_id).await, "12.00");
        assert_eq!(stock_of(&app, &pen_id).await, 5);
        let stapler = by_ean(&app, "5901234123457").await;
        let stapler_id = stapler["id"].as_str().unwrap().to_owned();

        // A full import without the stapler and with a new price for the pen.
        let second = "Code;Libellé;Prix;Qté\n\
                      4006381333931;stylo;11,00;4\n\
                      0887276302195;cable;2,50;7\n";
        let two = upload_and_wait(
            &app,
            &sid,
            "t2.csv",
            second.into(),
            &format!("?template_id={tid}&mode=full"),
        )
        .await;
        assert_eq!(two["import_status"], "succeeded", "{two}");
        assert_eq!(two["result"]["missing"]["offers"], 1, "{two}");
        assert_eq!(price_of(&app, &pen_id).await, "13.20");
        assert_eq!(stock_of(&app, &stapler_id).await, 0);

        // Rolling the full import back: the pen's price and stock, the stapler's stock.
        let two_path = format!("/api/v1/imports/jobs/{}", two["id"].as_str().unwrap());
        let (st, report) = app.post(&format!("{two_path}/rollback"), json!({})).await;
        assert_eq!(st, 200, "{report}");
        assert_eq!(report["prices_restored"], 1, "{report}");
        assert_eq!(report["products_removed"], 0, "{report}");
        assert_eq!(price_of(&app, &pen_id).await, "12.00");
        assert_eq!(stock_of(&app, &pen_id).await, 5);
        assert_eq!(stock_of(&app, &stapler_id).await, 9);
        let (_, job) = app.get(&two_path).await;
        assert_eq!(job["import_status"], "rolled_back", "{job}");
        let (st, _) = app.post(&format!("{two_path}/rollback"), json!({})).await;
        assert_eq!(st, 409);

        // Rolling the first back: the products it created go to the trash, except one that
        // someone changed since, which is kept.
        let (st, cable) = app
            .patch(
                &format!(
                    "/api/v1/products/{}",
                    by_ean(&app, "0887276302195").await["id"].as_str().unwrap()
                ),
                json!({"title": "Câble USB-C"}),
            )
            .await;
        assert_eq!(st, 200, "{cable}");
        let one_path = format!("/api/v1/imports/jobs/{}", one["id"].as_str().unwrap());
        let (st, report) = app.post(&format!("{one_path}/rollback"), json!({})).await;
        assert_eq!(st, 200, "{report}");
        assert_eq!(report["products_removed"], 2, "{report}");
        assert!(report["kept_changed_since"].as_u64().unwrap() >= 1, "{report}");
        let (st, _) = app.get(&format!("/api/v1/products/{pen_id}")).await;
        assert_eq!(st, 404);
        let (st, kept) = app
            .get(&format!("/api/v1/products/{}", cable["id"].as_str().unwrap()))
            .await;
        assert_eq!((st, kept["title"].as_str()), (200, Some("Câble USB-C")));

        // The day's statistics: two jobs, five rows.
        let (st, stats) = app
            .get(&format!("/api/v1/suppliers/{sid}/import-statistics"))
            .await;
        assert_eq!(st, 200, "{stats}");
        assert_eq!(
            (stats[0]["jobs"].as_i64(), stats[0]["rows_read"].as_i64()),
            (Some(2), Some(5)),
            "{stats}"
        );

        // The supplier's session ran both, one at a time, and shows in /admin/actors.
        let (_, actors) = app.get("/admin/actors").await;
        let session = format!("import.session.{sid}");
        assert!(actors.to_string().contains(&session), "{actors}");
    }
}

/// A WooCommerce product export imports without a template: the variable product, its
/// variations linked to it with their axes, prices and stock.
#[tokio::test]
async fn a_woocommerce_export_imports_with_its_variations() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let sid = new_supplier(&app, "woo", "Woo shop").await;
        let csv = "ID,Type,SKU,\"GTIN, UPC, EAN, or ISBN\",Name,Published,Short description,Description,In stock?,Stock,Sale price,Regular price,Categories,Images,Parent,Attribute 1 name,Attribute 1 value(s),Attribute 1 visible,Attribute 1 global\n\
            10,variable,HOODIE,,Hoodie,1,Warm,A warm hoodie,1,,,,Clothing > Hoodies,https://shop.test/h1.jpg,,Color,\"Blue, Green\",1,1\n\
            11,variation,HOODIE-BLUE,4006381333931,Hoodie - Blue,1,,,1,5,39.90,45.00,,,HOODIE,Color,Blue,,1\n\
            12,variation,HOODIE-GREEN,0887276302195,Hoodie - Green,1,,,1,2,,45.00,,,id:10,Color,Green,,1\n";
        let job = upload_and_wait(&app, &sid, "wc-export.csv", csv.into(), "").await;
        assert_eq!(job["import_status"], "succeeded", "{backend:?}: {job}");
        assert_eq!(job["result"]["file"]["profile"], "woocommerce", "{job}");
        assert_eq!(job["result"]["counters"]["created"], 3, "{job}");
        let (_, hits) = app.get("/api/v1/products/search?q=HOODIE").await;
        let parent = hits["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| &h["product"])
            .find(|p| p["sku"] == "HOODIE")
            .cloned()
            .expect("the parent product");
        let (st, variants) = app
            .get(&format!(
                "/api/v1/products/{}/variants",
                parent["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(st, 200, "{variants}");
        let mut axes: Vec<String> = variants
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["axes"]["Color"].as_str().unwrap_or_default().to_owned())
            .collect();
        axes.sort();
        assert_eq!(axes, ["Blue", "Green"], "{variants}");
        let blue = by_ean(&app, "4006381333931").await;
        let (_, prices) = app
            .get(&format!(
                "/api/v1/products/{}/prices",
                blue["id"].as_str().unwrap()
            ))
            .await;
        let mut got: Vec<(String, String)> = prices
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["price_type"].as_str().unwrap().to_owned(),
                    p["amount"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [("retail".into(), "45.00".into()), ("sale".into(), "39.90".into())],
            "{prices}"
        );
    }
}

/// A supplier's server on loopback: a price list, a 404, one that never answers, one too big.
async fn supplier_server() -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/tarifs/acme.csv",
            get(|| async {
                "ean;title;price;stock\n4006381333931;Stylo;1,50;12\n5901234123457;Agrafeuse;3,00;2\n"
            }),
        )
        .route(
            "/slow.csv",
            get(|| async {
                // Never answers: the fetch's timeout ends it.
                std::future::pending::<()>().await;
                ""
            }),
        )
        .route("/huge.csv", get(|| async { "ean;title\n".repeat(1000) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

/// `{"url": ...}`: the job fetches the file and imports it; a 404, a server that never
/// answers and a file over the limit end as clear job errors; a URL that is not HTTP is refused.
#[tokio::test]
async fn a_file_at_a_url_is_fetched_and_bad_sources_fail_clearly() {
    let server = supplier_server().await;
    for backend in backends() {
        let app = crate::helpers::spawn_app_with(backend, |s| {
            s.imports.fetch_private_addresses = true;
            s.imports.fetch_timeout_secs = 1;
            s.imports.max_upload_bytes = 4096;
            // A failed fetch is retried after the backoff; here the first failure is final.
            s.jobs.max_attempts = 1;
        })
        .await;
        let sid = new_supplier(&app, "acme", "Acme").await;
        let run = |url: String| {
            let app = &app;
            let sid = sid.clone();
            async move {
                let (st, job) = app
                    .post(&format!("/api/v1/suppliers/{sid}/imports"), json!({ "url": url }))
                    .await;
                assert_eq!(st, 202, "{job}");
                let path = format!("/api/v1/imports/jobs/{}", job["id"].as_str().unwrap());
                let mut last = Value::Null;
                assert!(
                    app.wait_for(&path, |_, j| {
                        last = j.clone();
                        matches!(j["status"].as_str(), Some("succeeded" | "failed"))
                    })
                    .await,
                    "{last}"
                );
                last
            }
        };
        let ok = run(format!("{server}/tarifs/acme.csv")).await;
        assert_eq!(ok["import_status"], "succeeded", "{backend:?}: {ok}");
        assert_eq!(ok["result"]["counters"]["created"], 2, "{ok}");
        assert_eq!(by_ean(&app, "5901234123457").await["title"], "Agrafeuse");

        let missing = run(format!("{server}/nothing-here.csv")).await;
        assert_eq!(missing["status"], "failed", "{missing}");
        assert!(
            missing["last_error"].as_str().unwrap().contains("404"),
            "{missing}"
        );
        let slow = run(format!("{server}/slow.csv")).await;
        assert_eq!(slow["status"], "failed", "{slow}");
        assert!(
            slow["last_error"].as_str().unwrap().contains("fetching"),
            "{slow}"
        );
        let huge = run(format!("{server}/huge.csv")).await;
        assert_eq!(huge["status"], "failed", "{huge}");
        assert!(
            huge["last_error"].as_str().unwrap().contains("at most 4096"),
            "{huge}"
        );

        for bad in ["ftp://example.com/a.csv", "not a url"] {
            let (st, e) = app
                .post(&format!("/api/v1/suppliers/{sid}/imports"), json!({ "url": bad }))
                .await;
            assert_eq!(st, 422, "{bad}: {e}");
        }
    }
}

/// `products-manager import --supplier CODE FILE`: the same pipeline from the shell, on the
/// databases a running server uses; the server sees the products.
#[tokio::test]
async fn the_import_command_imports_a_file_next_to_a_running_server() {
    let app = spawn_app(crate::helpers::Backend::Sqlite).await;
    let (st, _) = app
        .post(
            "/api/v1/suppliers",
            json!({"code": "cli-sup", "name": "Shell supplier"}),
        )
        .await;
    assert_eq!(st, 201);
    let dir = app.settings.storage.data_dir.clone();
    let file = dir.join("tarif.csv");
    std::fs::write(
        &file,
        "EAN;Désignation;Prix;Stock\n4006381333931;Stylo;1,50;3\n5901234123457;Agrafeuse;2,00;1\n4006381333932;Mauvais;1,00;1\n",
    )
    .unwrap();
    let run = |args: Vec<String>| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_products-manager"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PM__STORAGE__DATA_DIR", &dir)
            .env("PM__LOG__LEVEL", "warn")
            .output()
    };
    let file_arg = file.to_string_lossy().into_owned();
    let out = run(vec![
        "import".into(),
        "--supplier".into(),
        "cli-sup".into(),
        file_arg.clone(),
    ])
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("created 2") && stdout.contains("rejected 1"),
        "{stdout}"
    );
    assert!(stdout.contains("errors.csv"), "{stdout}");
    assert_eq!(by_ean(&app, "5901234123457").await["title"], "Agrafeuse");
    // An unknown supplier is an error that says so.
    let out = run(vec![
        "import".into(),
        "--supplier".into(),
        "nobody".into(),
        file_arg,
    ])
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no supplier has the code"));
}

/// A cell of [`xlsx`].
enum Cell {
    N(f64),
    S(&'static str),
    /// A shared string whose index is not a number: the part is corrupt from there on.
    Corrupt,
}

/// A real one-sheet XLSX workbook (inline strings, numbers as numbers).
fn xlsx(sheet: &str, rows: &[Vec<Cell>]) -> Vec<u8> {
    use std::io::Write as _;
    let mut data = String::new();
    for (r, row) in rows.iter().enumerate() {
        data.push_str(&format!("<row r=\"{}\">", r + 1));
        for (c, cell) in row.iter().enumerate() {
            let at = format!("{}{}", (b'A' + c as u8) as char, r + 1);
            match cell {
                Cell::N(v) => data.push_str(&format!("<c r=\"{at}\"><v>{v}</v></c>")),
                Cell::S(s) => {
                    data.push_str(&format!("<c r=\"{at}\" t=\"inlineStr\"><is><t>{s}</t></is></c>"))
                }
                Cell::Corrupt => data.push_str(&format!("<c r=\"{at}\" t=\"s\"><v>not-an-index</v></c>")),
            }
        }
        data.push_str("</row>");
    }
    let ns = "http://schemas.openxmlformats.org";
    let parts = [
        (
            "[Content_Types].xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{ns}/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#
            ),
        ),
        (
            "_rels/.rels",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{ns}/spreadsheetml/2006/main" xmlns:r="{ns}/officeDocument/2006/relationships"><sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/worksheets/sheet1.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{ns}/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#
            ),
        ),
    ];
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut out);
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in parts {
            z.start_file(name, opts).unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }
    out.into_inner()
}

/// An XLSX with title rows above its header and EANs stored as numbers (one that lost its
/// leading zero): the codes land with their digits, the bad row is rejected with its sheet row.
#[tokio::test]
async fn an_xlsx_with_title_rows_and_numeric_eans_lands() {
    use Cell::{N, S};
    for backend in backends() {
        let app = spawn_app(backend).await;
        let sid = new_supplier(&app, "xl", "Excel SA").await;
        let book = xlsx(
            "Tarif",
            &[
                vec![S("Tarif Fournisseur 2026")],
                vec![],
                vec![S("EAN"), S("Désignation"), S("Prix"), S("Stock")],
                vec![N(4006381333931.0), S("Stylo"), N(1.5), N(12.0)],
                vec![N(887276302195.0), S("Câble"), N(12.9), N(0.0)],
                vec![N(4006381333932.0), S("Mauvais EAN"), N(1.0), N(1.0)],
                vec![N(5901234123457.0), S("Agrafeuse"), N(3.0), N(4.0)],
            ],
        );
        let job = upload_and_wait(&app, &sid, "tarif.xlsx", book, "").await;
        assert_eq!(job["import_status"], "partially_succeeded", "{backend:?}: {job}");
        assert_eq!(job["result"]["file"]["format"], "xlsx", "{job}");
        let c = &job["result"]["counters"];
        assert_eq!(
            (c["created"].as_u64(), c["rejected"].as_u64()),
            (Some(3), Some(1)),
            "{c}"
        );
        let cable = by_ean(&app, "0887276302195").await;
        assert_eq!(cable["title"], "Câble", "{cable}");
        let (_, errors) = app
            .get(&format!(
                "/api/v1/imports/jobs/{}/errors",
                job["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(
            (
                errors["items"][0]["line"].as_i64(),
                errors["items"][0]["code"].as_str()
            ),
            (Some(6), Some("bad_gtin")),
            "{errors}"
        );
    }
}

/// A workbook corrupt part way: the job fails naming the row it stopped at, and every row
/// above it lands (more than a batch of them: the last, partial batch too).
#[tokio::test]
async fn an_xlsx_corrupt_part_way_lands_the_rows_above_and_fails_naming_the_row() {
    use Cell::{Corrupt, N, S};
    for backend in backends() {
        let app = spawn_app(backend).await;
        let sid = new_supplier(&app, "cut", "Cut SA").await;
        let mut rows = vec![vec![S("EAN"), S("Désignation"), S("Prix")]];
        let good = 1_500u32;
        for i in 0..=good {
            rows.push(vec![N(ean13(i).parse().unwrap()), S("Produit"), N(2.5)]);
        }
        rows.push(vec![Corrupt, S("Produit"), N(2.5)]);
        let job = upload_and_wait(&app, &sid, "coupe.xlsx", xlsx("Tarif", &rows), "").await;
        assert_eq!(job["status"], "failed", "{backend:?}: {job}");
        // The row being read when the corruption was found (sheet row 1502) may be missing
        // cells: it is not imported, and the error names it.
        let error = job["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("reading line 1502") && error.contains("not a readable spreadsheet"),
            "{backend:?}: {job}"
        );
        assert_eq!(
            job["progress"]["counters"]["created"].as_u64(),
            Some(u64::from(good)),
            "{backend:?}: {job}"
        );
        let last = by_ean(&app, &ean13(good - 1)).await;
        assert_eq!(last["title"], "Produit", "{last}");
        app.stop().await;
    }
}

/// A valid EAN-13 from a number.
fn ean13(i: u32) -> String {
    let body = format!("200{i:09}");
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(k, d)| u32::from(d - b'0') * if k % 2 == 1 { 3 } else { 1 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Ten rows (`Code;Libellé;Prix;Qté`); `dearer`: rows whose price is one euro more.
fn priced_file(dearer: &[u32]) -> Vec<u8> {
    let mut s = String::from("Code;Libellé;Prix;Qté\n");
    for i in 0..10 {
        let price = 10 + i + u32::from(dearer.contains(&i));
        s.push_str(&format!("{};produit {i};{price},00;{}\n", ean13(i), i + 1));
    }
    s.into_bytes()
}

/// An unchanged re-import writes nothing and says so; what changed since is written again:
/// 10% of the prices, a rollback, a deleted product, a price set by hand, another template.
#[tokio::test]
async fn an_unchanged_reimport_writes_nothing_and_whatever_changed_since_is_written_again() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let sid = new_supplier(&app, "hash", "Hash").await;
        let template = |upper: bool| {
            let mut title = json!({"source": "Libellé", "target": "title"});
            if upper {
                title["transforms"] = json!([{"op": "case", "to": "upper"}]);
            }
            json!({"name": format!("tarif {upper}"), "template": {"columns": [
                {"source": "Code", "target": "ean"},
                title,
                {"source": "Prix", "target": "cost_price", "transforms": [{"op": "decimal_comma"}]},
                {"source": "Qté", "target": "stock"}]}})
        };
        let (st, plain) = app
            .post(
                &format!("/api/v1/suppliers/{sid}/mapping-templates"),
                template(false),
            )
            .await;
        assert_eq!(st, 201, "{plain}");
        let (_, upper) = app
            .post(
                &format!("/api/v1/suppliers/{sid}/mapping-templates"),
                template(true),
            )
            .await;
        let plain = format!("?template_id={}", plain["id"].as_str().unwrap());
        let upper = format!("?template_id={}", upper["id"].as_str().unwrap());
        let counters = |job: &Value| {
            let c = &job["result"]["counters"];
            assert_eq!(job["import_status"], "succeeded", "{backend:?}: {job}");
            [
                "created",
                "updated",
                "unchanged",
                "prices_changed",
                "stocks_changed",
                "offers_changed",
            ]
            .map(|k| c[k].as_u64().unwrap_or(u64::MAX))
        };

        let first = upload_and_wait(&app, &sid, "a.csv", priced_file(&[]), &plain).await;
        assert_eq!(counters(&first), [10, 0, 0, 10, 10, 10], "{first}");
        let p3 = by_ean(&app, &ean13(3)).await["id"].as_str().unwrap().to_owned();
        let p7 = by_ean(&app, &ean13(7)).await["id"].as_str().unwrap().to_owned();
        // The same file: all unchanged, nothing written.
        let same = upload_and_wait(&app, &sid, "a.csv", priced_file(&[]), &plain).await;
        assert_eq!(counters(&same), [0, 0, 10, 0, 0, 0], "{same}");

        // 10% of the prices changed: that row alone, with its history.
        let dearer = upload_and_wait(&app, &sid, "b.csv", priced_file(&[3]), &plain).await;
        assert_eq!(counters(&dearer), [0, 0, 10, 1, 0, 1], "{dearer}");
        assert_eq!(price_of(&app, &p3).await, "14.00");
        let (_, history) = app.get(&format!("/api/v1/products/{p3}/price-history")).await;
        assert!(
            history.to_string().contains(dearer["id"].as_str().unwrap()),
            "{history}"
        );

        // Rolled back, then the same file again: written again, the catalog as imported.
        let path = format!("/api/v1/imports/jobs/{}/rollback", dearer["id"].as_str().unwrap());
        let (st, report) = app.post(&path, json!({})).await;
        assert_eq!(st, 200, "{report}");
        assert_eq!(price_of(&app, &p3).await, "13.00");
        let again = upload_and_wait(&app, &sid, "b.csv", priced_file(&[3]), &plain).await;
        assert_eq!(counters(&again), [0, 0, 10, 1, 0, 1], "{again}");
        assert_eq!(price_of(&app, &p3).await, "14.00");

        // A product deleted since, and a price set by hand: those rows are written again.
        let r = app
            .client
            .delete(app.url(&format!("/api/v1/products/{p7}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let r = app
            .client
            .put(app.url(&format!("/api/v1/products/{p3}/prices")))
            .json(&json!({"price_type": "cost", "currency": "EUR", "amount": "99.00"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let back = upload_and_wait(&app, &sid, "b.csv", priced_file(&[3]), &plain).await;
        assert_eq!(counters(&back), [1, 0, 9, 2, 1, 1], "{back}");
        assert_eq!(price_of(&app, &p3).await, "14.00");
        assert_eq!(by_ean(&app, &ean13(7)).await["title"], "produit 7");

        // Another template makes other rows: all written.
        let loud = upload_and_wait(&app, &sid, "b.csv", priced_file(&[3]), &upper).await;
        assert_eq!(counters(&loud), [0, 10, 0, 0, 0, 0], "{loud}");
        assert_eq!(by_ean(&app, &ean13(3)).await["title"], "PRODUIT 3");
        let quiet = upload_and_wait(&app, &sid, "b.csv", priced_file(&[3]), &upper).await;
        assert_eq!(counters(&quiet), [0, 0, 10, 0, 0, 0], "{quiet}");
    }
}

/// Batches in flight together (two on PostgreSQL) still write a file's rows as read one by
/// one: the same EANs again two batches later with other prices end at the later prices, and
/// an EAN that joins a product known by its SKU alone (a batch that must take the SKU lock
/// alone) joins it, with no duplicate.
#[tokio::test]
async fn batches_written_side_by_side_keep_the_files_order() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let sid = new_supplier(&app, "order", "Order").await;
        let (st, known) = app
            .post(
                "/api/v1/products",
                json!({"title": "known by its sku", "sku": "JOIN-1"}),
            )
            .await;
        assert_eq!(st, 201, "{known}");
        // Rows 0..1500 at 1,00, then the same EANs at 2,00 (lines 1502..3001): batches of
        // 1,000 rows share keys with the one before them. The joining row is in the second.
        let mut s = String::from("ean;sku;title;price\n");
        for i in 0..1500u32 {
            s.push_str(&format!("{};S-{i};article {i};1,00\n", ean13(i)));
        }
        s.push_str(&format!("{};JOIN-1;known by its sku;3,00\n", ean13(5000)));
        for i in 0..1500u32 {
            s.push_str(&format!("{};S-{i};article {i};2,00\n", ean13(i)));
        }
        let job = upload_and_wait(&app, &sid, "order.csv", s.into_bytes(), "").await;
        assert_eq!(job["import_status"], "succeeded", "{backend:?}: {job}");
        let c = &job["result"]["counters"];
        assert_eq!(c["rows_read"], 3001, "{backend:?}: {c}");
        assert_eq!(c["rejected"], 0, "{backend:?}: {c}");
        assert_eq!(c["created"], 1500, "{backend:?}: {c}");

        let db = app.db(Database::Catalog).await;
        let q = "SELECT COUNT(*) FROM products WHERE deleted_at IS NULL";
        let live: i64 = match &db.pool {
            pm_storage::Pool::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
            pm_storage::Pool::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        };
        db.close().await;
        assert_eq!(live, 1501, "{backend:?}: 1,500 products and the one joined");
        let joined = by_ean(&app, &ean13(5000)).await;
        assert_eq!(joined["id"], known["id"], "{backend:?}: {joined}");
        assert_eq!(price_of(&app, known["id"].as_str().unwrap()).await, "3.00");
        for i in [0, 499, 500, 998, 999, 1000, 1499] {
            let p = by_ean(&app, &ean13(i)).await;
            let id = p["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{backend:?}: no product {i}"));
            assert_eq!(price_of(&app, id).await, "2.00", "{backend:?}: row {i}");
        }
    }
}

/// An upload can say where the header is (`header_line`) when a title line above it looks
/// like one; out of range, it is refused before anything is stored.
#[tokio::test]
async fn an_upload_can_fix_the_header_line() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let sid = new_supplier(&app, "head", "Head").await;
        let mut s = String::from("Tarif;Acme;2026;EUR\nean;title;price;stock\n");
        for i in 0..3u32 {
            s.push_str(&format!("{};lampe {i};5,00;3\n", ean13(100 + i)));
        }
        let job = upload_and_wait(&app, &sid, "h.csv", s.clone().into_bytes(), "?header_line=2").await;
        assert_eq!(job["import_status"], "succeeded", "{backend:?}: {job}");
        assert_eq!(job["result"]["file"]["header_line"], 2, "{backend:?}: {job}");
        assert_eq!(job["result"]["counters"]["created"], 3, "{backend:?}: {job}");
        assert_eq!(job["result"]["counters"]["rejected"], 0, "{backend:?}: {job}");
        assert_eq!(by_ean(&app, &ean13(101)).await["title"], "lampe 1", "{backend:?}");

        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(s.into_bytes()).file_name("h.csv"),
        );
        let r = app
            .client
            .post(app.url(&format!("/api/v1/suppliers/{sid}/imports?header_line=0")))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 422, "{backend:?}: {body}");
        assert!(body.to_string().contains("header_line"), "{body}");
    }
}

/// The category column becomes the catalog's tree: each level found by its slug under its
/// parent (made once when missing, whatever the spelling of a later row), the leaf set as the
/// product's primary category; a path that names no category is reported on its row, which
/// lands without one.
#[tokio::test]
async fn category_paths_become_the_catalogs_tree() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let sid = new_supplier(&app, "cats", "Cats").await;
        let csv = format!(
            "ean;titre;prix;categorie\n\
             {};Stylo bleu;1,20;Bureau > Stylos\n\
             {};Stylo rouge;1,30;bureau>stylos\n\
             {};Cahier;2,50;Bureau > Cahiers\n\
             {};Gomme;0,90;!!! > ?\n",
            ean13(1),
            ean13(2),
            ean13(3),
            ean13(4)
        );
        let job = upload_and_wait(&app, &sid, "cats.csv", csv.clone().into(), "").await;
        assert_eq!(job["status"], "succeeded", "{backend:?}: {job}");
        let c = &job["result"]["counters"];
        assert_eq!(
            (c["created"].as_u64(), c["rejected"].as_u64()),
            (Some(4), Some(1)),
            "{c}"
        );
        let category = |p: &Value| p["primary_category_id"].as_str().map(str::to_owned);
        let blue = by_ean(&app, &ean13(1)).await;
        let red = by_ean(&app, &ean13(2)).await;
        let book = by_ean(&app, &ean13(3)).await;
        let eraser = by_ean(&app, &ean13(4)).await;
        let pens = category(&blue).expect("a category for the first row");
        assert_eq!(
            category(&red).as_deref(),
            Some(pens.as_str()),
            "one category: {red}"
        );
        assert_eq!(category(&eraser), None, "{eraser}");
        let (st, leaf) = app.get(&format!("/api/v1/categories/{pens}")).await;
        assert_eq!(st, 200, "{leaf}");
        assert_eq!(
            (leaf["name"].as_str(), leaf["slug_path"].as_str()),
            (Some("Stylos"), Some("bureau/stylos")),
            "{leaf}"
        );
        let (_, notebooks) = app
            .get(&format!("/api/v1/categories/{}", category(&book).unwrap()))
            .await;
        assert_eq!(notebooks["slug_path"], "bureau/cahiers", "{notebooks}");
        assert_eq!(
            notebooks["parent_id"], leaf["parent_id"],
            "one parent: {notebooks}"
        );
        let path = format!("/api/v1/imports/jobs/{}", job["id"].as_str().unwrap());
        let (_, errors) = app.get(&format!("{path}/errors")).await;
        assert_eq!(
            (
                errors["items"][0]["line"].as_u64(),
                errors["items"][0]["column"].as_str(),
                errors["items"][0]["code"].as_str()
            ),
            (Some(5), Some("category_path"), Some("refused")),
            "{errors}"
        );
        // The same file again: the same categories, nothing written.
        let again = upload_and_wait(&app, &sid, "cats.csv", csv.into(), "").await;
        let c = &again["result"]["counters"];
        assert_eq!(
            (c["unchanged"].as_u64(), c["rejected"].as_u64()),
            (Some(4), Some(1)),
            "{again}"
        );
        let (_, roots) = app.get("/api/v1/categories?limit=100").await;
        let names: Vec<&str> = roots["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names.iter().filter(|n| **n == "Bureau").count(), 1, "{roots}");
    }
}
