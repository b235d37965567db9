//! The durable job queues through the API: claim, retries, cancel, a worker killed mid-job,
//! two instances on one PostgreSQL. (The process killed with SIGKILL is in `binary.rs`.)

use serde_json::{json, Value};

use crate::helpers::{backends, spawn_app_with, Backend, TestApp};

fn debug_jobs(s: &mut pm_config::Settings) {
    s.jobs.debug_kinds = true;
    s.jobs.lease_secs = 1;
    s.jobs.poll_interval_ms = 50;
    // Retries at once: the backoff itself is tested on a manual clock in `pm_storage::jobs`.
    s.jobs.retry_base_secs = 0;
}

async fn enqueue(app: &TestApp, queue: &str, payload: Value) -> String {
    let (st, job) = app
        .post(
            &format!("/api/v1/jobs/{queue}"),
            json!({"kind": "debug.sleep", "payload": payload}),
        )
        .await;
    assert_eq!(st, 202, "{job}");
    assert_eq!(job["status"], "queued");
    job["id"].as_str().unwrap().to_owned()
}

async fn wait_job(app: &TestApp, queue: &str, id: &str, mut cond: impl FnMut(&Value) -> bool) -> Value {
    let path = format!("/api/v1/jobs/{queue}/{id}");
    let mut last = Value::Null;
    let ok = app
        .wait_for(&path, |_, b| {
            last = b.clone();
            cond(b)
        })
        .await;
    assert!(ok, "job never reached the state: {last}");
    last
}

#[tokio::test]
async fn a_job_runs_reports_progress_is_retried_and_succeeds() {
    for backend in backends() {
        let app = spawn_app_with(backend, debug_jobs).await;
        let id = enqueue(
            &app,
            "imports",
            json!({"ms": 300, "steps": 3, "fail_attempts": 1}),
        )
        .await;
        let job = wait_job(&app, "imports", &id, |j| j["status"] == "succeeded").await;
        assert_eq!(job["attempts"], 2, "{job}");
        assert_eq!(job["result"], json!({"attempt": 2, "slept_ms": 300}));
        assert_eq!(job["last_error"], "debug failure on attempt 1");
        assert!(job["finished_at"].is_string());
        // listed, and the queue's workers show in /admin/actors
        let (_, page) = app.get("/api/v1/jobs/imports?status=succeeded").await;
        assert_eq!(page["items"][0]["id"], id.as_str(), "{page}");
        let (_, actors) = app.get("/admin/actors").await;
        let names: Vec<&str> = actors
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["name"].as_str())
            .filter(|n| n.starts_with("jobs.imports.worker."))
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for m in [
            "pm_jobs_finished_total",
            "pm_job_run_seconds",
            "pm_job_wait_seconds",
            "pm_job_queue_ready",
        ] {
            assert!(metrics.contains(m), "{m} missing from /metrics");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn a_fatal_failure_is_not_retried_and_notifies_its_creator() {
    let app = spawn_app_with(Backend::Sqlite, debug_jobs).await;
    let id = enqueue(&app, "exports", json!({"ms": 10, "steps": 1, "fatal": true})).await;
    let job = wait_job(&app, "exports", &id, |j| j["status"] == "failed").await;
    assert_eq!(job["attempts"], 1, "{job}");
    let ok = app
        .wait_for("/api/v1/notifications", |_, b| {
            b["items"][0]["kind"] == "job_failed"
        })
        .await;
    assert!(ok, "no job_failed notification");
    app.stop().await;
}

#[tokio::test]
async fn cancel_stops_a_waiting_job_at_once_and_a_running_one_soon() {
    for backend in backends() {
        let app = spawn_app_with(backend, |s| {
            debug_jobs(s);
            s.jobs.workers.catalog = 1;
        })
        .await;
        let long = enqueue(&app, "catalog", json!({"ms": 60000, "steps": 600})).await;
        wait_job(&app, "catalog", &long, |j| j["status"] == "running").await;
        let waiting = enqueue(&app, "catalog", json!({"ms": 10})).await;
        let (st, c) = app
            .post(&format!("/api/v1/jobs/catalog/{waiting}/cancel"), json!({}))
            .await;
        assert_eq!((st, c["outcome"].as_str()), (200, Some("cancelled")), "{c}");
        let (st, c) = app
            .post(&format!("/api/v1/jobs/catalog/{long}/cancel"), json!({}))
            .await;
        assert_eq!((st, c["outcome"].as_str()), (202, Some("requested")), "{c}");
        let job = wait_job(&app, "catalog", &long, |j| j["status"] == "cancelled").await;
        assert!(job["finished_at"].is_string(), "{job}");
        let (st, _) = app
            .post(&format!("/api/v1/jobs/catalog/{long}/cancel"), json!({}))
            .await;
        assert_eq!(st, 409);
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_requests_and_other_peoples_jobs_are_refused() {
    let app = spawn_app_with(Backend::Sqlite, debug_jobs).await;
    let (st, _) = app
        .post("/api/v1/jobs/nowhere", json!({"kind": "debug.sleep"}))
        .await;
    assert_eq!(st, 404);
    let (st, e) = app
        .post("/api/v1/jobs/media", json!({"kind": "resize.everything"}))
        .await;
    assert_eq!(st, 422, "{e}");
    assert!(e.to_string().contains("debug.sleep"), "{e}");
    let id = enqueue(&app, "media", json!({"ms": 10})).await;
    let (st, _) = app
        .post(
            "/api/v1/users",
            json!({"username": "olga", "password": "long enough pw", "roles": ["operator"]}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = app
        .post(
            "/api/v1/users",
            json!({"username": "vic", "password": "long enough pw", "roles": ["viewer"]}),
        )
        .await;
    assert_eq!(st, 201);
    let olga = app.client_with_token(
        app.login("olga", "long enough pw").await["access_token"]
            .as_str()
            .unwrap(),
    );
    let vic = app.client_with_token(
        app.login("vic", "long enough pw").await["access_token"]
            .as_str()
            .unwrap(),
    );
    // an operator runs jobs but does not see the admin's
    let r = olga
        .get(app.url(&format!("/api/v1/jobs/media/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let page: Value = olga
        .get(app.url("/api/v1/jobs/media"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]));
    let r = olga
        .post(app.url("/api/v1/jobs/media"))
        .json(&json!({"kind": "debug.sleep", "payload": {"ms": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // a viewer runs none
    let r = vic
        .post(app.url("/api/v1/jobs/media"))
        .json(&json!({"kind": "debug.sleep"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn a_worker_killed_mid_job_leaves_it_to_be_taken_over_and_finished_once() {
    for backend in backends() {
        let app = spawn_app_with(backend, |s| {
            debug_jobs(s);
            s.jobs.workers.imports = 1;
        })
        .await;
        let id = enqueue(&app, "imports", json!({"ms": 1500, "steps": 15})).await;
        wait_job(&app, "imports", &id, |j| {
            j["status"] == "running" && j["attempts"] == 1
        })
        .await;
        let ok = app
            .wait_for("/admin/actors/jobs.imports.worker.1", |_, a| {
                a["state"]["state"] == "running"
            })
            .await;
        assert!(ok);
        let r = app
            .client
            .post(app.url("/admin/actors/jobs.imports.worker.1/fault"))
            .json(&json!({"action": "crash"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let job = wait_job(&app, "imports", &id, |j| j["status"] == "succeeded").await;
        // the first run was cut off and recorded nothing; the second finished it
        assert_eq!(job["attempts"], 2, "{job}");
        assert_eq!(job["result"]["attempt"], 2, "{job}");
        // The worker counts the job once its outcome is recorded (just after the row changes).
        let w = "/admin/actors/jobs.imports.worker.1";
        let counted = app
            .wait_for(w, |_, w| {
                w["state"]["finished"] == 1 && w["state"]["state"] == "idle"
            })
            .await;
        assert!(counted, "{}", app.actor("jobs.imports.worker.1").await);
        assert_eq!(app.actor("jobs.imports.worker.1").await["restarts"], 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn two_instances_on_one_postgres_never_run_one_job_twice() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let a = spawn_app_with(Backend::Postgres, debug_jobs).await;
    let prefix = a.settings.database.name_prefix.clone();
    let jwt = a.settings.auth.jwt_secret.clone();
    let b = spawn_app_with(Backend::Postgres, |s| {
        debug_jobs(s);
        s.database.name_prefix = prefix;
        s.auth.jwt_secret = jwt;
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(enqueue(&a, "code2asin", json!({"ms": 40, "steps": 2, "i": i})).await);
    }
    let mut owners = std::collections::HashSet::new();
    for id in &ids {
        let job = wait_job(&b, "code2asin", id, |j| j["status"] == "succeeded").await;
        assert_eq!(job["attempts"], 1, "{job}");
        owners.insert(
            job["lease_owner"]
                .as_str()
                .unwrap()
                .split('#')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    async fn finished(app: &TestApp) -> u64 {
        let mut n = 0;
        for i in 1..=app.settings.jobs.workers.code2asin {
            let w = app.actor(&format!("jobs.code2asin.worker.{i}")).await;
            n += w["state"]["finished"].as_u64().unwrap();
        }
        n
    }
    // Each worker counts a job once its outcome is recorded, just after the row changes.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (fa, fb) = loop {
        let (fa, fb) = (finished(&a).await, finished(&b).await);
        if fa + fb >= 24 || std::time::Instant::now() > until {
            break (fa, fb);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        fa + fb,
        24,
        "every job finished exactly once across both: {fa} + {fb}"
    );
    assert!(fa > 0 && fb > 0, "both instances took jobs: {fa} + {fb}");
    b.stop().await;
    a.stop().await;
}
