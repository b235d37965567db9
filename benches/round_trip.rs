//! Cost of one actor round trip (send → handle → reply) and of `GET /api/v1/products/{id}`
//! through the edge. Run with `cargo bench --bench round_trip`; figures go to BENCHMARKS.md.
//!
//! References measured in the same run:
//! - `actix/addr_send`: a bare actix `Addr::send` to an actor on another thread, what our
//!   mailbox adds its bound, counters and panic boundary to;
//! - `edge/health`: `GET /health`, the edge without any actor or database.

use std::time::Duration;

use actix::{Actor, Context, Handler, Message};
use criterion::{criterion_group, criterion_main, Criterion};
use pm_supervisors::{
    Behaviour, ChildSpec, Ctx, Handles, Intensity, Mailbox, Registry, Reply, Strategy, Supervisor,
};

struct Echo;
impl Behaviour for Echo {}

struct Sync_(u64);
impl Handles<Sync_> for Echo {
    type Ok = u64;
    type Err = String;
    fn handle(&mut self, m: Sync_, _ctx: &Ctx<Self>) -> Reply<Result<u64, String>> {
        Reply::ready(Ok(m.0 + 1))
    }
}

struct Async_(u64);
impl Handles<Async_> for Echo {
    type Ok = u64;
    type Err = String;
    fn handle(&mut self, m: Async_, _ctx: &Ctx<Self>) -> Reply<Result<u64, String>> {
        Reply::spawn(async move { Ok(m.0 + 1) })
    }
}

struct Raw;
impl Actor for Raw {
    type Context = Context<Self>;
}
#[derive(Message)]
#[rtype(result = "u64")]
struct RawMsg(u64);
impl Handler<RawMsg> for Raw {
    type Result = u64;
    fn handle(&mut self, m: RawMsg, _: &mut Context<Self>) -> u64 {
        m.0 + 1
    }
}

/// Starts the actors inside their own actix system thread, as the application does, and hands
/// back their handles.
fn start_actors() -> (Mailbox<Echo>, actix::Addr<Raw>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        products_manager::block_on(async move {
            let registry = Registry::new();
            let intensity = Intensity {
                max_restarts: 5,
                within: Duration::from_secs(10),
            };
            let sup = Supervisor::root("root", Strategy::OneForOne, intensity, registry, |_| {});
            let mb = sup
                .start(ChildSpec::new("echo", "bench", || Echo).concurrency(4))
                .unwrap();
            let arbiter = actix::Arbiter::new();
            let raw = Raw::start_in_arbiter(&arbiter.handle(), |_| Raw);
            tx.send((mb, raw)).unwrap();
            std::future::pending::<()>().await;
        })
    });
    rx.recv().unwrap()
}

fn actors(c: &mut Criterion) {
    let (mb, raw) = start_actors();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("actor_round_trip");
    g.bench_function("mailbox/sync_handler", |b| {
        b.to_async(&rt)
            .iter(|| async { mb.send(Sync_(1)).await.unwrap() })
    });
    g.bench_function("mailbox/async_handler", |b| {
        b.to_async(&rt)
            .iter(|| async { mb.send(Async_(1)).await.unwrap() })
    });
    g.bench_function("actix/addr_send", |b| {
        b.to_async(&rt)
            .iter(|| async { raw.send(RawMsg(1)).await.unwrap() })
    });
    g.finish();
}

fn edge(c: &mut Criterion) {
    let mut settings = pm_config::load_from(None, Vec::new()).unwrap().settings;
    let dir = std::env::temp_dir().join(format!("pm-bench-{}", std::process::id()));
    settings.storage.data_dir = dir.clone();
    settings.log.level = "warn".into();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        products_manager::block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            products_manager::run(settings, listener, std::future::pending())
                .await
                .unwrap();
        })
    });
    let addr = rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let id = rt.block_on(async {
        let base = format!("http://{addr}");
        for _ in 0..200 {
            if client.get(format!("{base}/health")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let p: serde_json::Value = client
            .post(format!("{base}/api/v1/products"))
            .json(&serde_json::json!({"ean": "4006381333931", "title": "bench"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        p["id"].as_str().unwrap().to_owned()
    });
    let product = format!("http://{addr}/api/v1/products/{id}");
    let health = format!("http://{addr}/health");
    let mut g = c.benchmark_group("edge");
    g.bench_function("get_product_by_id", |b| {
        b.to_async(&rt)
            .iter(|| async { client.get(&product).send().await.unwrap().bytes().await.unwrap() })
    });
    g.bench_function("health", |b| {
        b.to_async(&rt)
            .iter(|| async { client.get(&health).send().await.unwrap().bytes().await.unwrap() })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, actors, edge);
criterion_main!(benches);
