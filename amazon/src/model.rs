//! The parts of SP-API's `ItemSearchResults` and `ErrorList` that we read.
//!
//! Amazon's model (`docs/external-apis/catalogItems_2022-04-01.json`) has many more fields and
//! adds new ones over time; these types declare only what matching needs and ignore the rest
//! (serde's default), and every field that Amazon may omit has a default, so a sparse item (no
//! summaries, no images) still parses.

use serde::Deserialize;

/// One page of `searchCatalogItems`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemSearchResults {
    #[serde(default)]
    pub number_of_results: u32,
    #[serde(default)]
    pub pagination: Option<Pagination>,
    #[serde(default)]
    pub items: Vec<CatalogItem>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub next_token: Option<String>,
    pub previous_token: Option<String>,
}

/// An ASIN with the datasets we request (`identifiers,summaries,salesRanks,images`); each
/// dataset is a list grouped by marketplace, as Amazon sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItem {
    pub asin: String,
    #[serde(default)]
    pub identifiers: Vec<IdentifiersByMarketplace>,
    #[serde(default)]
    pub summaries: Vec<ItemSummary>,
    #[serde(default)]
    pub sales_ranks: Vec<SalesRanksByMarketplace>,
    #[serde(default)]
    pub images: Vec<ImagesByMarketplace>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentifiersByMarketplace {
    #[serde(default)]
    pub marketplace_id: String,
    #[serde(default)]
    pub identifiers: Vec<ItemIdentifier>,
}

/// `{"identifierType":"EAN","identifier":"0887276302195"}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemIdentifier {
    #[serde(default)]
    pub identifier_type: String,
    #[serde(default)]
    pub identifier: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemSummary {
    #[serde(default)]
    pub marketplace_id: String,
    pub brand: Option<String>,
    pub item_name: Option<String>,
    pub manufacturer: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesRanksByMarketplace {
    #[serde(default)]
    pub marketplace_id: String,
    #[serde(default)]
    pub classification_ranks: Vec<Rank>,
    #[serde(default)]
    pub display_group_ranks: Vec<Rank>,
}

/// A classification or display-group rank; both shapes carry `title` and `rank`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rank {
    #[serde(default)]
    pub title: String,
    pub rank: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagesByMarketplace {
    #[serde(default)]
    pub marketplace_id: String,
    #[serde(default)]
    pub images: Vec<ItemImage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemImage {
    #[serde(default)]
    pub variant: String,
    pub link: String,
    #[serde(default)]
    pub height: u32,
    #[serde(default)]
    pub width: u32,
}

/// SP-API's error body: `{"errors":[{"code","message","details"}]}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorList {
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    pub details: Option<String>,
}

impl ErrorList {
    /// `code: message (details)` of every error, joined by `; `.
    pub fn summary(&self) -> String {
        self.errors
            .iter()
            .map(|e| match e.details.as_deref().filter(|d| !d.is_empty()) {
                Some(details) => format!("{}: {} ({details})", e.code, e.message),
                None => format!("{}: {}", e.code, e.message),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Amazon's own sandbox response parses, with its unknown fields ignored.
    #[test]
    fn parses_the_sandbox_example() {
        let body = include_str!("../tests/data/spapi_search_sandbox_example_trimmed.json");
        let page: ItemSearchResults = serde_json::from_str(body).unwrap();
        assert_eq!(page.number_of_results, 1);
        assert!(page.pagination.unwrap().next_token.is_some());
        let item = &page.items[0];
        assert_eq!(item.asin, "B07N4M94X4");
        assert_eq!(item.identifiers[0].identifiers.len(), 3);
        assert_eq!(item.summaries[0].brand.as_deref(), Some("SAMSUNG"));
        assert_eq!(item.sales_ranks[0].classification_ranks[0].rank, 113);
        assert_eq!(item.images[0].images[0].width, 2560);
    }

    #[test]
    fn sparse_item_parses() {
        let page: ItemSearchResults =
            serde_json::from_str(r#"{"numberOfResults":1,"items":[{"asin":"B000000001"}]}"#).unwrap();
        assert!(page.items[0].summaries.is_empty());
        assert!(page.pagination.is_none());
    }

    #[test]
    fn error_list_summary() {
        let list: ErrorList = serde_json::from_str(
            r#"{"errors":[{"code":"InvalidInput","message":"bad","details":""},
                          {"code":"X","message":"y","details":"z"}]}"#,
        )
        .unwrap();
        assert_eq!(list.summary(), "InvalidInput: bad; X: y (z)");
    }
}
