//! The stand-in's catalog: a pure function of the GTIN, so any EAN works without fixtures and
//! tests can compute what the server will answer ([`catalog_for`], [`shape_for`]).
//!
//! Rule. `h` = FNV-1a 64 of the GTIN-14 digits; `h % 100` picks the [`Shape`]:
//!
//! | `h % 100` | shape | ASINs | sales ranks |
//! |---|---|---|---|
//! | 0–19  | `NotFound`  | 0 | |
//! | 20–59 | `Single`    | 1 | one rank |
//! | 60–71 | `ClearBest` | 2 | best R, other 25·R (≥ 10× better) |
//! | 72–79 | `ClearBest` | 3 | best R, others 3·R and 4·R (2–10× better) |
//! | 80–89 | `Tied`      | 2 | both R |
//! | 90–94 | `Close`     | 3 | R, 1.1·R, 1.2·R |
//! | 95–99 | `Sparse`    | 1 | none, and no images |
//!
//! The best-ranked ASIN is not always listed first (the order is rotated by `h`). R is the
//! classification rank (1–50,000); the display-group rank is always larger, so an item's best
//! rank is its classification rank.
//!
//! Identifier forms, per ASIN (`f` = a second hash of the GTIN and the ASIN's index, mod 10):
//! a GTIN-14 with a non-zero indicator digit is listed as `GTIN` only; otherwise, when the
//! GTIN-14 starts with `00` (an EAN-13 starting with 0, i.e. a UPC-A) and `f` < 2, as `UPC`
//! only (12 digits); when `f` < 4, as `GTIN` only (14 digits); else as `EAN` (13 digits) and
//! `GTIN`, plus `UPC` when it has one. Titles, brands and image links are made from the same
//! hashes. The catalog is the same in every marketplace.

use pm_domain::Gtin;
use serde_json::{json, Value};

/// How many ASINs an EAN has and how their ranks compare (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    NotFound,
    Single,
    /// `n` ASINs of which one ranks clearly better.
    ClearBest(usize),
    /// Two ASINs with the same rank.
    Tied,
    /// Three ASINs within 20% of each other.
    Close,
    /// One ASIN without sales ranks or images.
    Sparse,
}

/// One ASIN of the stand-in's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandInProduct {
    pub asin: String,
    pub title: String,
    pub brand: String,
    /// `(identifierType, identifier)` as the item lists them.
    pub identifiers: Vec<(&'static str, String)>,
    pub classification_rank: Option<u32>,
    pub display_group_rank: Option<u32>,
    /// The largest `MAIN` image (the item also has a smaller `MAIN` and a `PT01`).
    pub main_image: Option<String>,
}

impl StandInProduct {
    /// The lowest of the item's ranks, as a client should compute it.
    pub fn best_rank(&self) -> Option<u32> {
        match (self.classification_rank, self.display_group_rank) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

const BRANDS: &[&str] = &[
    "Acme",
    "Brixton",
    "Celestia",
    "Dunmore",
    "Elkhorn",
    "Fjordline",
    "Granite & Co",
    "Helios",
    "Ivory Lane",
    "Juniper",
];
const ADJECTIVES: &[&str] = &[
    "Compact",
    "Deluxe",
    "Classic",
    "Portable",
    "Stainless",
    "Wireless",
    "Organic",
    "Premium",
];
const NOUNS: &[&str] = &[
    "Kettle",
    "Headphones",
    "Backpack",
    "Desk Lamp",
    "Coffee Grinder",
    "Yoga Mat",
    "Blender",
    "Water Bottle",
    "Toolkit",
    "Bluetooth Speaker",
];
const VARIANTS: &[&str] = &["", " (Pack of 2)", " - Renewed"];

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64 of `h` and a salt: independent-looking numbers from one hash.
fn mix(h: u64, salt: u64) -> u64 {
    let mut z = h.wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash(gtin: &Gtin) -> u64 {
    fnv1a(gtin.as_gtin14().as_bytes())
}

/// The shape of `gtin`'s entry.
pub fn shape_for(gtin: &Gtin) -> Shape {
    match hash(gtin) % 100 {
        0..=19 => Shape::NotFound,
        20..=59 => Shape::Single,
        60..=71 => Shape::ClearBest(2),
        72..=79 => Shape::ClearBest(3),
        80..=89 => Shape::Tied,
        90..=94 => Shape::Close,
        _ => Shape::Sparse,
    }
}

/// The ASINs the stand-in returns for `gtin`, in response order.
pub fn catalog_for(gtin: &Gtin) -> Vec<StandInProduct> {
    let h = hash(gtin);
    let base = u32::try_from(1 + mix(h, 1) % 50_000).unwrap_or(1);
    let ranks: Vec<Option<u32>> = match shape_for(gtin) {
        Shape::NotFound => return Vec::new(),
        Shape::Single => vec![Some(base)],
        Shape::ClearBest(2) => vec![Some(base), Some(base * 25)],
        Shape::ClearBest(_) => vec![Some(base), Some(base * 3), Some(base * 4)],
        Shape::Tied => vec![Some(base), Some(base)],
        Shape::Close => vec![Some(base), Some(base + base / 10), Some(base + base / 5)],
        Shape::Sparse => vec![None],
    };
    let n = ranks.len();
    let rotation = usize::try_from(mix(h, 2) % n as u64).unwrap_or(0);
    let brand = BRANDS[(mix(h, 3) % BRANDS.len() as u64) as usize];
    let noun = NOUNS[(mix(h, 4) % NOUNS.len() as u64) as usize];
    let adjective = ADJECTIVES[(mix(h, 5) % ADJECTIVES.len() as u64) as usize];
    let model = mix(h, 6) % 10_000;
    (0..n)
        .map(|k| {
            // k is the ASIN's index in the ranking; position in the response is rotated.
            let i = (k + rotation) % n;
            let rank = ranks[i];
            let asin = asin_for(h, i);
            let images = rank.is_some();
            StandInProduct {
                title: format!(
                    "{brand} {adjective} {noun} PM-{model:04}{}",
                    VARIANTS[i % VARIANTS.len()]
                ),
                brand: brand.to_owned(),
                identifiers: identifiers_for(gtin, mix(h, 100 + i as u64)),
                classification_rank: rank,
                display_group_rank: rank.map(|r| r.saturating_mul(7).saturating_add(13)),
                main_image: images.then(|| image_link(&asin, 1500)),
                asin,
            }
        })
        .collect()
}

fn asin_for(h: u64, i: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut x = mix(h, 10 + i as u64);
    let mut asin = String::from("B0");
    for _ in 0..8 {
        asin.push(char::from(ALPHABET[(x % 36) as usize]));
        x /= 36;
    }
    asin
}

fn identifiers_for(gtin: &Gtin, salt: u64) -> Vec<(&'static str, String)> {
    let g14 = gtin.as_gtin14();
    if !g14.starts_with('0') {
        return vec![("GTIN", g14.to_owned())];
    }
    let upc = g14.starts_with("00").then(|| g14[2..].to_owned());
    let f = (salt >> 16) % 10;
    match (f, upc) {
        (0 | 1, Some(upc)) => vec![("UPC", upc)],
        (0..=3, _) => vec![("GTIN", g14.to_owned())],
        (_, upc) => {
            let mut ids = vec![("EAN", g14[1..].to_owned()), ("GTIN", g14.to_owned())];
            if let Some(upc) = upc {
                ids.push(("UPC", upc));
            }
            ids
        }
    }
}

fn image_link(asin: &str, size: u32) -> String {
    format!("https://m.media-amazon.com/images/I/{asin}-MAIN-{size}.jpg")
}

/// Which `includedData` datasets a request asked for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Included {
    pub identifiers: bool,
    pub images: bool,
    pub product_types: bool,
    pub sales_ranks: bool,
    pub summaries: bool,
}

impl StandInProduct {
    /// The item in Amazon's JSON shape, with only the requested datasets (each grouped by
    /// marketplace, as in the model's sandbox example).
    pub(crate) fn to_json(&self, marketplace_id: &str, included: Included) -> Value {
        let mut item = serde_json::Map::new();
        item.insert("asin".into(), json!(self.asin));
        if included.identifiers {
            let ids: Vec<Value> = self
                .identifiers
                .iter()
                .map(|(t, v)| json!({"identifierType": t, "identifier": v}))
                .collect();
            item.insert(
                "identifiers".into(),
                json!([{"marketplaceId": marketplace_id, "identifiers": ids}]),
            );
        }
        if included.images {
            let images = match &self.main_image {
                Some(main) => {
                    let small = image_link(&self.asin, 500);
                    let other = format!("https://m.media-amazon.com/images/I/{}-PT01.jpg", self.asin);
                    vec![
                        json!({"variant": "MAIN", "link": main, "height": 1500, "width": 1500}),
                        json!({"variant": "MAIN", "link": small, "height": 500, "width": 500}),
                        json!({"variant": "PT01", "link": other, "height": 2000, "width": 2000}),
                    ]
                }
                None => Vec::new(),
            };
            item.insert(
                "images".into(),
                json!([{"marketplaceId": marketplace_id, "images": images}]),
            );
        }
        if included.product_types {
            item.insert(
                "productTypes".into(),
                json!([{"marketplaceId": marketplace_id, "productType": "HOME"}]),
            );
        }
        if included.sales_ranks {
            let ranks = match (self.classification_rank, self.display_group_rank) {
                (Some(c), Some(d)) => {
                    let link = "https://www.amazon.com/gp/bestsellers/home";
                    vec![json!({
                        "marketplaceId": marketplace_id,
                        "classificationRanks": [
                            {"classificationId": "3206325031", "title": "Home", "link": link, "rank": c}
                        ],
                        "displayGroupRanks": [
                            {"websiteDisplayGroup": "home_display_on_website", "title": "Home & Kitchen",
                             "link": link, "rank": d}
                        ],
                    })]
                }
                _ => Vec::new(),
            };
            item.insert("salesRanks".into(), Value::Array(ranks));
        }
        if included.summaries {
            item.insert(
                "summaries".into(),
                json!([{
                    "marketplaceId": marketplace_id,
                    "brand": self.brand,
                    "itemClassification": "BASE_PRODUCT",
                    "itemName": self.title,
                    "manufacturer": self.brand,
                    "websiteDisplayGroup": "home_display_on_website",
                    "websiteDisplayGroupName": "Home & Kitchen",
                }]),
            );
        }
        Value::Object(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ean(i: u64) -> Gtin {
        let payload = format!("40{i:010}");
        (0..10)
            .find_map(|d| Gtin::parse(&format!("{payload}{d}")).ok())
            .unwrap()
    }

    #[test]
    fn deterministic_and_every_shape_occurs() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..500 {
            let g = ean(i);
            assert_eq!(catalog_for(&g), catalog_for(&g));
            let shape = shape_for(&g);
            let n = catalog_for(&g).len();
            let expected = match shape {
                Shape::NotFound => 0,
                Shape::Single | Shape::Sparse => 1,
                Shape::ClearBest(n) => n,
                Shape::Tied => 2,
                Shape::Close => 3,
            };
            assert_eq!(n, expected, "{g} {shape:?}");
            seen.insert(format!("{shape:?}"));
        }
        assert_eq!(seen.len(), 7, "{seen:?}");
    }

    #[test]
    fn asins_are_distinct_and_well_formed() {
        for i in 0..200 {
            let items = catalog_for(&ean(i));
            for (k, p) in items.iter().enumerate() {
                assert!(pm_domain::Asin::parse(&p.asin).is_ok());
                assert!(items[k + 1..].iter().all(|q| q.asin != p.asin));
            }
        }
    }

    #[test]
    fn upc_form_only_for_leading_zero() {
        let indicator = Gtin::parse("10012345678902").unwrap();
        for p in catalog_for(&indicator) {
            assert_eq!(p.identifiers, vec![("GTIN", "10012345678902".to_owned())]);
        }
        for i in 0..200 {
            for p in catalog_for(&ean(i)) {
                assert!(
                    p.identifiers.iter().all(|(t, _)| *t != "UPC"),
                    "4… has no upc form"
                );
            }
        }
    }
}
