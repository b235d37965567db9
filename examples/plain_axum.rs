//! The reference for the cached-read benchmark: a bare axum handler that answers every GET
//! with the same bytes, as JSON. Same runtime, same HTTP stack, no auth, no actor, no cache:
//! what a cached `GET /api/v1/products/{id}` is compared with.
//!
//! `cargo run --release --example plain_axum -- <bind address> <file with the body>`

use axum::http::header;
use axum::routing::get;
use axum::Router;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(bind), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: plain_axum <bind address> <body file>");
        std::process::exit(2);
    };
    let body = match std::fs::read(&file) {
        Ok(b) => bytes::Bytes::from(b),
        Err(e) => {
            eprintln!("plain_axum: cannot read {file}: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let app = Router::new().fallback(get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }));
        let listener = tokio::net::TcpListener::bind(&bind).await.expect("bind");
        axum::serve(listener, app).await.expect("serve");
    });
}
