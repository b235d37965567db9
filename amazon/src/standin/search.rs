//! `searchCatalogItems` in the stand-in: parameter validation as Amazon's model states it, and
//! the paged response built from [`super::catalog`].
//!
//! Parameters are csv (`collectionFormat: csv`); a repeated key adds to the list. Unknown
//! parameters are ignored. Keyword searches validate but find nothing (there is no text index);
//! identifier searches of the GTIN family (EAN, GTIN, UPC, JAN, ISBN) look the codes up as GTINs,
//! as Amazon's GTIN-based index does; ASIN, MINSAN and SKU searches find nothing. One request
//! reads at most 20 identifiers × 3 ASINs, so the work per request is bounded.

use std::collections::HashMap;

use pm_domain::Gtin;
use serde_json::{json, Value};

use super::catalog::{catalog_for, Included};

const IDENTIFIER_TYPES: &[&str] = &["ASIN", "EAN", "GTIN", "ISBN", "JAN", "MINSAN", "SKU", "UPC"];
const GTIN_TYPES: &[&str] = &["EAN", "GTIN", "ISBN", "JAN", "UPC"];
const INCLUDED_DATA: &[&str] = &[
    "attributes",
    "classifications",
    "dimensions",
    "identifiers",
    "images",
    "productTypes",
    "relationships",
    "salesRanks",
    "summaries",
    "vendorDetails",
];
const MAX_LIST: usize = 20;
const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 20;

/// A 400's message (`InvalidInput`).
#[derive(Debug)]
pub(crate) struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// Validates the query string and answers one page of `ItemSearchResults`.
pub(crate) fn search(raw_query: &str) -> Result<Value, Invalid> {
    let mut params: HashMap<String, Vec<String>> = HashMap::new();
    let mut present: Vec<String> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        present.push(key.to_string());
        let list = params.entry(key.into_owned()).or_default();
        list.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        );
    }
    let list = |name: &str| params.get(name).cloned().unwrap_or_default();
    let single = |name: &str| params.get(name).and_then(|v| v.first().cloned());

    let marketplaces = list("marketplaceIds");
    if marketplaces.is_empty() {
        return Err(invalid("Missing required 'marketplaceIds' parameter."));
    }
    if marketplaces.len() > 1 {
        return Err(invalid(format!(
            "'marketplaceIds' must contain at most 1 value, {} provided.",
            marketplaces.len()
        )));
    }
    let marketplace_id = &marketplaces[0];

    let identifiers = list("identifiers");
    let keywords = list("keywords");
    if !identifiers.is_empty() && !keywords.is_empty() {
        return Err(invalid("'identifiers' and 'keywords' cannot be used together."));
    }
    if identifiers.is_empty() && keywords.is_empty() {
        return Err(invalid("Either 'identifiers' or 'keywords' must be provided."));
    }
    if identifiers.len() > MAX_LIST {
        return Err(invalid(format!(
            "'identifiers' must contain at most {MAX_LIST} values, {} provided.",
            identifiers.len()
        )));
    }
    if keywords.len() > MAX_LIST {
        return Err(invalid(format!(
            "'keywords' must contain at most {MAX_LIST} values, {} provided.",
            keywords.len()
        )));
    }
    let identifiers_type = single("identifiersType");
    if let Some(t) = &identifiers_type {
        if !IDENTIFIER_TYPES.contains(&t.as_str()) {
            return Err(invalid(format!(
                "Invalid 'identifiersType' provided: '{t}'. Valid values: {}.",
                IDENTIFIER_TYPES.join(", ")
            )));
        }
    }
    if !identifiers.is_empty() && identifiers_type.is_none() {
        return Err(invalid(
            "'identifiersType' is required when 'identifiers' is provided.",
        ));
    }
    if identifiers_type.as_deref() == Some("SKU") && single("sellerId").is_none() {
        return Err(invalid("'sellerId' is required when 'identifiersType' is SKU."));
    }

    let mut included = Included::default();
    let requested_data = if present.iter().any(|k| k == "includedData") {
        list("includedData")
    } else {
        vec!["summaries".to_owned()]
    };
    for d in &requested_data {
        match d.as_str() {
            "identifiers" => included.identifiers = true,
            "images" => included.images = true,
            "productTypes" => included.product_types = true,
            "salesRanks" => included.sales_ranks = true,
            "summaries" => included.summaries = true,
            other if INCLUDED_DATA.contains(&other) => {}
            other => {
                return Err(invalid(format!(
                    "Invalid 'includedData' value '{other}'. Valid values: {}.",
                    INCLUDED_DATA.join(", ")
                )))
            }
        }
    }

    let page_size = match params.get("pageSize").map(|v| v.as_slice()) {
        None => DEFAULT_PAGE_SIZE,
        Some([one]) => match one.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "'pageSize' must be an integer between 1 and {MAX_PAGE_SIZE}, '{one}' provided."
                )))
            }
        },
        Some(_) => {
            return Err(invalid(format!(
                "'pageSize' must be an integer between 1 and {MAX_PAGE_SIZE}."
            )))
        }
    };

    // Every item of the search, one per ASIN, in the order of the requested identifiers.
    let mut all: Vec<Value> = Vec::new();
    if identifiers_type
        .as_deref()
        .is_some_and(|t| GTIN_TYPES.contains(&t))
    {
        let mut seen: Vec<String> = Vec::new();
        for code in &identifiers {
            let Ok(gtin) = Gtin::parse(code) else { continue };
            for product in catalog_for(&gtin) {
                if !seen.contains(&product.asin) {
                    all.push(product.to_json(marketplace_id, included));
                    seen.push(product.asin);
                }
            }
        }
    }

    let fingerprint = fingerprint(
        marketplace_id,
        identifiers_type.as_deref(),
        &identifiers,
        &keywords,
    );
    let offset = match single("pageToken") {
        None => 0,
        Some(token) => parse_page_token(&token, &fingerprint)
            .filter(|o| *o < all.len())
            .ok_or_else(|| invalid("Invalid 'pageToken' provided."))?,
    };
    let end = (offset + page_size).min(all.len());
    let mut pagination = serde_json::Map::new();
    if end < all.len() {
        pagination.insert("nextToken".into(), json!(page_token(end, &fingerprint)));
    }
    if offset > 0 {
        pagination.insert(
            "previousToken".into(),
            json!(page_token(offset.saturating_sub(page_size), &fingerprint)),
        );
    }
    let mut body = serde_json::Map::new();
    body.insert("numberOfResults".into(), json!(all.len()));
    if !pagination.is_empty() {
        body.insert("pagination".into(), Value::Object(pagination));
    }
    let page: Vec<Value> = all.drain(offset..end).collect();
    body.insert("items".into(), Value::Array(page));
    Ok(Value::Object(body))
}

/// Ties a page token to the search it came from, as Amazon's tokens are.
fn fingerprint(marketplace: &str, kind: Option<&str>, identifiers: &[String], keywords: &[String]) -> String {
    let text = format!(
        "{marketplace}|{}|{}|{}",
        kind.unwrap_or(""),
        identifiers.join(","),
        keywords.join(",")
    );
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

fn page_token(offset: usize, fingerprint: &str) -> String {
    format!("{fingerprint}{offset:06}")
}

fn parse_page_token(token: &str, fingerprint: &str) -> Option<usize> {
    token.strip_prefix(fingerprint)?.parse().ok()
}
