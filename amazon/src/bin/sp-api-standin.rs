//! Runs the SP-API + LWA stand-in until Ctrl-C, for demos and load scripts.
//!
//! `cargo run -p pm-amazon --features standin --bin sp-api-standin -- --addr 127.0.0.1:0 --rate 2 --burst 2`
//! prints the bound address (first line, `http://…/`, for scripts to read), the LWA URL and the
//! credentials it accepts.

use std::net::SocketAddr;

use clap::Parser;
use pm_amazon::standin::{StandIn, StandInConfig};

/// SP-API searchCatalogItems + LWA stand-in.
#[derive(Debug, Parser)]
#[command(name = "sp-api-standin")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Token bucket refill, requests per second (Amazon: 2).
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Token bucket size (Amazon: 2).
    #[arg(long, default_value_t = 2)]
    burst: u32,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl: u64,
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long)]
    client_secret: Option<String>,
    #[arg(long)]
    refresh_token: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let defaults = StandInConfig::default();
    let config = StandInConfig {
        rate_per_sec: args.rate,
        burst: args.burst,
        token_ttl_secs: args.token_ttl,
        client_id: args.client_id.unwrap_or(defaults.client_id),
        client_secret: args.client_secret.unwrap_or(defaults.client_secret),
        refresh_token: args.refresh_token.unwrap_or(defaults.refresh_token),
    };
    let handle = StandIn::start_on(args.addr, config.clone()).await?;
    println!("{}", handle.base_url());
    println!("lwa: {}", handle.lwa_url());
    println!("client_id: {}", config.client_id);
    println!("client_secret: {}", config.client_secret);
    println!("refresh_token: {}", config.refresh_token);
    println!("stats: {}_standin/stats", handle.base_url());
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
