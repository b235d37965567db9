//! Helpers: a stand-in with a client wired to it, and GTINs of a wanted catalog shape.

use pm_amazon::standin::{catalog_for, shape_for, Shape, StandIn, StandInConfig, StandInHandle};
use pm_amazon::{CatalogClient, LwaCredentials, TokenProvider};
use pm_domain::Gtin;

pub const FR: &str = "A13V1IB3VIYZZH";

/// A stand-in with a bucket large enough that only the tests about throttling see a 429.
pub fn roomy() -> StandInConfig {
    StandInConfig {
        rate_per_sec: 1000.0,
        burst: 1000,
        ..StandInConfig::default()
    }
}

pub struct Setup {
    pub standin: StandInHandle,
    pub client: CatalogClient,
    pub tokens: TokenProvider,
}

pub async fn setup(config: StandInConfig) -> Setup {
    let credentials = config.credentials();
    setup_with(config, credentials).await
}

pub async fn setup_with(config: StandInConfig, credentials: LwaCredentials) -> Setup {
    let standin = StandIn::start(config).await.expect("stand-in starts");
    let http = reqwest::Client::new();
    let tokens = TokenProvider::with_endpoint(http.clone(), standin.lwa_url(), credentials);
    let client = CatalogClient::new(http, standin.base_url(), tokens.clone());
    Setup {
        standin,
        client,
        tokens,
    }
}

/// The valid GTIN whose first digits are `payload` (13 digits for a GTIN-14, 12 for an EAN-13);
/// none for all zeros.
pub fn with_check_digit(payload: &str) -> Option<Gtin> {
    (0..10).find_map(|d| Gtin::parse(&format!("{payload}{d}")).ok())
}

/// EAN-13s starting with `prefix` (2 digits), in a fixed order.
pub fn eans(prefix: &str) -> impl Iterator<Item = Gtin> + '_ {
    (0u64..).filter_map(move |i| with_check_digit(&format!("{prefix}{i:010}")))
}

/// The first `n` EANs (prefix 40) of `shape`.
pub fn of_shape(shape: Shape, n: usize) -> Vec<Gtin> {
    eans("40").filter(|g| shape_for(g) == shape).take(n).collect()
}

/// An EAN starting with 0 whose single ASIN lists it only as a 12-digit UPC.
pub fn upc_only() -> Gtin {
    eans("00")
        .find(|g| {
            let items = catalog_for(g);
            shape_for(g) == Shape::Single && items[0].identifiers.iter().all(|(t, _)| *t == "UPC")
        })
        .unwrap()
}

/// An EAN whose single ASIN lists it only as a 14-digit GTIN.
pub fn gtin_only() -> Gtin {
    eans("40")
        .find(|g| {
            let items = catalog_for(g);
            shape_for(g) == Shape::Single && items[0].identifiers.iter().all(|(t, _)| *t == "GTIN")
        })
        .unwrap()
}
