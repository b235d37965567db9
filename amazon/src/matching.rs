//! Mapping search results back to the requested GTINs, and choosing among several ASINs.
//!
//! SP-API does not say which requested identifier produced which item; Amazon's advice is to
//! request `identifiers` and map back ourselves. Amazon's index is GTIN-based, so an item found
//! by EAN `0887276302195` may list it as UPC `887276302195` or GTIN `00887276302195` only:
//! both sides are compared as GTIN-14. Any identifier of 8, 12, 13 or 14 digits counts,
//! whatever its `identifierType` (EAN, UPC, GTIN, JAN, ISBN-13 are all the same number space),
//! and an item may match several requested codes.
//!
//! When one EAN maps to several ASINs (duplicates, bundles, old listings), [`choose`] prefers the
//! best-selling one only when its sales rank is clearly better; otherwise it leaves the choice
//! to a person.

use std::collections::HashMap;

use pm_domain::{Asin, Gtin};
use serde::Serialize;

use crate::model::CatalogItem;

/// One ASIN that carries a requested GTIN, with what an operator needs to confirm it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub asin: Asin,
    pub title: Option<String>,
    pub brand: Option<String>,
    /// The best (lowest) of the item's classification and display-group ranks.
    pub sales_rank: Option<u32>,
    /// The largest `MAIN` image.
    pub image: Option<String>,
}

/// Groups `items` by the requested GTIN they carry. Every requested GTIN has an entry, keyed by
/// its canonical form ([`Gtin::as_str`]); an empty list means Amazon has no item for it.
/// Candidates keep Amazon's order and each ASIN appears once per GTIN.
pub fn match_items(requested: &[Gtin], items: &[CatalogItem]) -> HashMap<String, Vec<Candidate>> {
    let mut by_gtin14: HashMap<&str, String> = HashMap::with_capacity(requested.len());
    let mut out: HashMap<String, Vec<Candidate>> = HashMap::with_capacity(requested.len());
    for gtin in requested {
        by_gtin14.insert(gtin.as_gtin14(), gtin.as_str().to_owned());
        out.entry(gtin.as_str().to_owned()).or_default();
    }
    for item in items {
        let Ok(asin) = Asin::parse(&item.asin) else {
            tracing::warn!(asin = %item.asin, "sp-api item with an invalid asin ignored");
            continue;
        };
        let mut matched: Vec<&String> = Vec::new();
        for group in &item.identifiers {
            for id in &group.identifiers {
                if let Some(key) = gtin14(&id.identifier).and_then(|g| by_gtin14.get(g.as_str())) {
                    if !matched.contains(&key) {
                        matched.push(key);
                    }
                }
            }
        }
        if matched.is_empty() {
            continue;
        }
        let candidate = candidate(asin, item);
        for key in matched {
            let list = out.entry(key.clone()).or_default();
            if !list.iter().any(|c| c.asin == candidate.asin) {
                list.push(candidate.clone());
            }
        }
    }
    out
}

/// An identifier as GTIN-14, when it is one: 8, 12, 13 or 14 digits, left-padded with zeros.
/// The check digit is not verified: Amazon's data is what it is, and equality with a requested
/// (valid) GTIN is what matters.
fn gtin14(identifier: &str) -> Option<String> {
    let s = identifier.trim();
    if matches!(s.len(), 8 | 12 | 13 | 14) && s.bytes().all(|b| b.is_ascii_digit()) {
        Some(format!("{s:0>14}"))
    } else {
        None
    }
}

fn candidate(asin: Asin, item: &CatalogItem) -> Candidate {
    let summary = item.summaries.first();
    let sales_rank = item
        .sales_ranks
        .iter()
        .flat_map(|m| m.classification_ranks.iter().chain(&m.display_group_ranks))
        .map(|r| r.rank)
        .filter(|r| *r > 0)
        .min();
    let image = item
        .images
        .iter()
        .flat_map(|m| &m.images)
        .filter(|i| i.variant.eq_ignore_ascii_case("MAIN"))
        .max_by_key(|i| u64::from(i.width) * u64::from(i.height))
        .map(|i| i.link.clone());
    Candidate {
        asin,
        title: summary.and_then(|s| s.item_name.clone()),
        brand: summary.and_then(|s| s.brand.clone().or_else(|| s.manufacturer.clone())),
        sales_rank,
        image,
    }
}

/// How [`choose`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceKind {
    /// Amazon has no item for the GTIN.
    NotFound,
    /// Exactly one ASIN: take it.
    Single,
    /// Several ASINs, one sells clearly better: take it, with less confidence.
    BestRanked,
    /// Several ASINs and no clear winner: a person decides.
    Ambiguous,
}

/// The suggested ASIN for one GTIN and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub preferred: Option<Asin>,
    /// 1.0 for a single candidate; 0.6–0.8 for a best-ranked one; 0.0 when none is preferred.
    pub confidence: f64,
    pub kind: ChoiceKind,
    pub reason: String,
}

/// A rank at most this fraction of the runner-up's is "clearly better" (2× the sales).
const CLEAR_RATIO: f64 = 0.5;
/// A rank at most this fraction of the runner-up's is overwhelming (10×).
const STRONG_RATIO: f64 = 0.1;

/// Picks among the candidates of one GTIN:
/// - none → not found;
/// - one → it, confidence 1.0;
/// - several → the best-ranked one when its rank is at most half the runner-up's (or only it
///   has a rank): confidence 0.8 when at least 10× better, else 0.6. Otherwise (close ranks,
///   ties, no ranks) none is preferred and the reason lists the candidates.
pub fn choose(candidates: &[Candidate]) -> Choice {
    match candidates {
        [] => Choice {
            preferred: None,
            confidence: 0.0,
            kind: ChoiceKind::NotFound,
            reason: "no amazon item carries this gtin".into(),
        },
        [only] => Choice {
            preferred: Some(only.asin.clone()),
            confidence: 1.0,
            kind: ChoiceKind::Single,
            reason: format!("one amazon item: {}", only.asin),
        },
        several => {
            let mut ranked: Vec<&Candidate> = several.iter().collect();
            // Ranked first, best rank first; ties by asin so the outcome is stable.
            ranked.sort_by(|a, b| {
                (a.sales_rank.is_none(), a.sales_rank, &a.asin).cmp(&(
                    b.sales_rank.is_none(),
                    b.sales_rank,
                    &b.asin,
                ))
            });
            let (best, runner) = (ranked[0], ranked[1]);
            let n = several.len();
            match (best.sales_rank, runner.sales_rank) {
                (Some(b), None) => Choice {
                    preferred: Some(best.asin.clone()),
                    confidence: 0.6,
                    kind: ChoiceKind::BestRanked,
                    reason: format!("{n} amazon items; only {} has a sales rank ({b})", best.asin),
                },
                (Some(b), Some(r)) if f64::from(b) <= f64::from(r) * CLEAR_RATIO => {
                    let confidence = if f64::from(b) <= f64::from(r) * STRONG_RATIO {
                        0.8
                    } else {
                        0.6
                    };
                    Choice {
                        preferred: Some(best.asin.clone()),
                        confidence,
                        kind: ChoiceKind::BestRanked,
                        reason: format!(
                            "{n} amazon items; {} ranks {b}, next best {} ranks {r}",
                            best.asin, runner.asin
                        ),
                    }
                }
                _ => Choice {
                    preferred: None,
                    confidence: 0.0,
                    kind: ChoiceKind::Ambiguous,
                    reason: format!(
                        "{n} amazon items with no clearly better sales rank: {}",
                        ranked
                            .iter()
                            .map(|c| match c.sales_rank {
                                Some(r) => format!("{} (rank {r})", c.asin),
                                None => format!("{} (no rank)", c.asin),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IdentifiersByMarketplace, ItemIdentifier, Rank, SalesRanksByMarketplace};

    fn item(asin: &str, ids: &[(&str, &str)], rank: Option<u32>) -> CatalogItem {
        CatalogItem {
            asin: asin.into(),
            identifiers: vec![IdentifiersByMarketplace {
                marketplace_id: "A13V1IB3VIYZZH".into(),
                identifiers: ids
                    .iter()
                    .map(|(t, v)| ItemIdentifier {
                        identifier_type: (*t).into(),
                        identifier: (*v).into(),
                    })
                    .collect(),
            }],
            sales_ranks: rank
                .map(|r| {
                    vec![SalesRanksByMarketplace {
                        marketplace_id: "A13V1IB3VIYZZH".into(),
                        classification_ranks: vec![Rank {
                            title: "c".into(),
                            rank: r,
                        }],
                        display_group_ranks: vec![Rank {
                            title: "d".into(),
                            rank: r * 10,
                        }],
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn g(s: &str) -> Gtin {
        Gtin::parse(s).unwrap()
    }

    #[test]
    fn matches_every_spelling_as_gtin14() {
        let requested = [
            g("0887276302195"),
            g("4006381333931"),
            g("10012345678902"),
            g("96385074"),
        ];
        let items = [
            item("B000000001", &[("UPC", "887276302195")], None),
            item("B000000002", &[("GTIN", "04006381333931")], None),
            item("B000000003", &[("GTIN", "10012345678902")], None),
            item("B000000004", &[("EAN", "0000096385074")], None),
            item("B000000005", &[("EAN", "5000000000000"), ("SKU", "X")], None),
        ];
        let m = match_items(&requested, &items);
        assert_eq!(m.len(), 4);
        assert_eq!(m["0887276302195"][0].asin.as_str(), "B000000001");
        assert_eq!(m["4006381333931"][0].asin.as_str(), "B000000002");
        assert_eq!(m["10012345678902"][0].asin.as_str(), "B000000003");
        assert_eq!(m["0000096385074"][0].asin.as_str(), "B000000004");
    }

    #[test]
    fn one_item_can_match_several_codes_and_unmatched_are_empty() {
        let requested = [g("0887276302195"), g("4006381333931"), g("5012345678900")];
        let items = [item(
            "B000000001",
            &[
                ("EAN", "0887276302195"),
                ("EAN", "4006381333931"),
                ("UPC", "887276302195"),
            ],
            Some(5),
        )];
        let m = match_items(&requested, &items);
        assert_eq!(
            m["0887276302195"].len(),
            1,
            "one asin listed once despite two spellings"
        );
        assert_eq!(m["4006381333931"].len(), 1);
        assert!(m["5012345678900"].is_empty());
        // The best of classification (5) and display-group (50) ranks.
        assert_eq!(m["4006381333931"][0].sales_rank, Some(5));
    }

    #[test]
    fn picks_title_brand_and_largest_main_image_from_the_sandbox_example() {
        let body = include_str!("../tests/data/spapi_search_sandbox_example_trimmed.json");
        let page: crate::model::ItemSearchResults = serde_json::from_str(body).unwrap();
        let m = match_items(&[g("0887276302195")], &page.items);
        let c = &m["0887276302195"][0];
        assert_eq!(c.asin.as_str(), "B07N4M94X4");
        assert_eq!(c.brand.as_deref(), Some("SAMSUNG"));
        assert!(c.title.as_deref().unwrap().starts_with("Samsung QN82Q60RAFXZA"));
        assert_eq!(c.sales_rank, Some(113));
        assert_eq!(
            c.image.as_deref(),
            Some("https://m.media-amazon.com/images/I/91uohwV+k3L.jpg")
        );
    }

    fn cand(asin: &str, rank: Option<u32>) -> Candidate {
        Candidate {
            asin: Asin::parse(asin).unwrap(),
            title: None,
            brand: None,
            sales_rank: rank,
            image: None,
        }
    }

    #[test]
    fn choose_rules() {
        assert_eq!(choose(&[]).kind, ChoiceKind::NotFound);
        let one = choose(&[cand("B000000001", None)]);
        assert_eq!((one.kind, one.confidence), (ChoiceKind::Single, 1.0));

        let strong = choose(&[cand("B000000001", Some(5000)), cand("B000000002", Some(100))]);
        assert_eq!(strong.preferred.unwrap().as_str(), "B000000002");
        assert_eq!(strong.confidence, 0.8);
        assert!(
            strong.reason.contains("B000000002 ranks 100"),
            "{}",
            strong.reason
        );

        let clear = choose(&[cand("B000000001", Some(300)), cand("B000000002", Some(100))]);
        assert_eq!((clear.kind, clear.confidence), (ChoiceKind::BestRanked, 0.6));

        let close = choose(&[cand("B000000001", Some(110)), cand("B000000002", Some(100))]);
        assert_eq!((close.kind, close.preferred), (ChoiceKind::Ambiguous, None));
        let tie = choose(&[cand("B000000001", Some(100)), cand("B000000002", Some(100))]);
        assert_eq!(tie.kind, ChoiceKind::Ambiguous);
        let unranked = choose(&[cand("B000000001", None), cand("B000000002", None)]);
        assert_eq!(unranked.kind, ChoiceKind::Ambiguous);
        let only_ranked = choose(&[cand("B000000001", None), cand("B000000002", Some(9))]);
        assert_eq!(only_ranked.preferred.unwrap().as_str(), "B000000002");
    }
}
