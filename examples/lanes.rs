//! The catalog's lanes under load: p50/p95/p99 of cached and uncached `GET /api/v1/products/{id}`
//! alone, then while a bulk load of 100,000 products runs through `POST /api/v1/products/bulk`
//! (the `store.catalog.bulk` lane). Run by `loadtests/run.sh lanes` against a release build:
//!
//! ```text
//! lanes <base url> <bearer token>
//! ```
//!
//! Knobs (environment): `LANES_BULK_TOTAL` (100000), `LANES_BULK_BATCH` (1000),
//! `LANES_BULK_CLIENTS` (2), `LANES_READS` (4000 per measurement), `LANES_READERS` (8).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A valid EAN-13 from its first twelve digits.
fn ean13(twelve: u64) -> String {
    let digits = format!("{twelve:012}");
    let sum: u32 = digits
        .chars()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap_or(0) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

fn batch(first: u64, n: u64, tag: &str) -> Value {
    let items: Vec<Value> = (first..first + n)
        .map(|i| {
            json!({
                "ean": ean13(500_000_000_000 + i), "sku": format!("LANE-{i}"),
                "title": format!("lane product {i} {tag}"), "brand": "Lanes",
            })
        })
        .collect();
    json!({ "items": items })
}

struct Stats {
    label: String,
    ms: Vec<f64>,
    errors: u64,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        let i = ((self.ms.len() as f64 - 1.0) * p).round() as usize;
        self.ms[i]
    }

    fn print(&self) {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} |",
            self.label,
            self.ms.len(),
            self.pct(0.50),
            self.pct(0.95),
            self.pct(0.99),
            self.errors
        );
    }
}

/// `total` GETs of `paths` (round robin) from `readers` concurrent clients.
async fn reads(
    client: &reqwest::Client,
    base: &str,
    label: &str,
    paths: Arc<Vec<String>>,
    total: usize,
    readers: usize,
) -> Stats {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..readers {
        let (client, base, paths, next) = (client.clone(), base.to_owned(), paths.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ms, mut errors) = (Vec::new(), 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= total {
                    break;
                }
                let url = format!("{base}{}", paths[i % paths.len()]);
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (ms, errors)
        }));
    }
    let mut all = Stats {
        label: label.to_owned(),
        ms: Vec::new(),
        errors: 0,
    };
    for t in tasks {
        let (ms, e) = t.await.expect("reader task");
        all.ms.extend(ms);
        all.errors += e;
    }
    all.ms.sort_by(f64::total_cmp);
    all
}

/// Bulk-loads `total` products in batches from `clients` writers; returns (products/s, 503s).
async fn bulk(
    client: reqwest::Client,
    base: String,
    first: u64,
    total: u64,
    batch_size: u64,
    clients: u64,
) -> (f64, u64) {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, next, rejected) = (client.clone(), base.clone(), next.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b * batch_size >= total {
                    break;
                }
                let body = batch(
                    first + b * batch_size,
                    batch_size.min(total - b * batch_size),
                    "bulk",
                );
                loop {
                    let r = client
                        .post(format!("{base}/api/v1/products/bulk"))
                        .json(&body)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) if r.status().as_u16() == 503 => {
                            rejected.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Ok(r) => panic!("bulk answered {}", r.status()),
                        Err(e) => panic!("bulk failed: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("bulk task");
    }
    (
        total as f64 / started.elapsed().as_secs_f64(),
        rejected.load(Ordering::Relaxed),
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, token) = match args.as_slice() {
        [_, base, token] => (base.trim_end_matches('/').to_owned(), token.clone()),
        _ => {
            eprintln!("usage: lanes <base url> <bearer token>");
            std::process::exit(2);
        }
    };
    let bulk_total = env("LANES_BULK_TOTAL", 100_000) as u64;
    let batch_size = env("LANES_BULK_BATCH", 1000) as u64;
    let clients = env("LANES_BULK_CLIENTS", 2) as u64;
    let total = env("LANES_READS", 4000);
    let readers = env("LANES_READERS", 8);
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("token"),
    );
    let client = reqwest::Client::builder()
        .default_headers(h)
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");

    // The products the reads use: 4 × `total` distinct ones (each uncached read is a miss).
    let seed = (4 * total) as u64;
    let mut ids = Vec::new();
    for b in 0..seed.div_ceil(batch_size) {
        let r: Value = client
            .post(format!("{base}/api/v1/products/bulk"))
            .json(&batch(
                b * batch_size,
                batch_size.min(seed - b * batch_size),
                "seed",
            ))
            .send()
            .await
            .expect("seed")
            .json()
            .await
            .expect("seed answer");
        for item in r["results"].as_array().expect("results") {
            ids.push(format!("/api/v1/products/{}", item["id"].as_str().expect("id")));
        }
    }
    let hot = Arc::new(vec![ids[0].clone()]);
    client
        .get(format!("{base}{}", ids[0]))
        .send()
        .await
        .expect("warm");
    let cold = |i: usize| Arc::new(ids[i * total..(i + 1) * total].to_vec());

    println!("| reads | requests | p50 ms | p95 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|");
    reads(&client, &base, "cached, alone", hot.clone(), total, readers)
        .await
        .print();
    reads(&client, &base, "uncached, alone", cold(1), total, readers)
        .await
        .print();

    let loading = Arc::new(AtomicBool::new(true));
    let loader = {
        let (client, base, loading) = (client.clone(), base.clone(), loading.clone());
        tokio::spawn(async move {
            let r = bulk(client, base, seed, bulk_total, batch_size, clients).await;
            loading.store(false, Ordering::Release);
            r
        })
    };
    // Let the load get going before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cached = reads(
        &client,
        &base,
        "cached, during the bulk load",
        hot,
        total,
        readers,
    )
    .await;
    let uncached = reads(
        &client,
        &base,
        "uncached, during the bulk load",
        cold(2),
        total,
        readers,
    )
    .await;
    let overlapped = loading.load(Ordering::Acquire);
    cached.print();
    uncached.print();
    let (rate, rejected) = loader.await.expect("loader");
    println!();
    println!(
        "bulk load: {bulk_total} products in batches of {batch_size} from {clients} clients at {rate:.0} products/s, {rejected} batches answered 503; reads finished while the load still ran: {overlapped}"
    );
}
