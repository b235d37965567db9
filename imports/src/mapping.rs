//! Which column is which field: a mapping suggested from the header names (English, French,
//! German and common variants) and from the values (a column of valid GTINs is the EAN).
//!
//! Names are compared on a normalised key (ASCII transliteration, lower case, words of letters
//! and digits: `Code EAN`, `code_ean` and `CODE-EAN` are one key). An exact synonym gives
//! confidence 1.0, a header that contains a synonym as whole words 0.8, a column whose sample
//! values are nearly all valid GTINs 0.95 for the EAN. Every field gets its best column and
//! every column at most one field. The suggestion is *confident* when the required fields (a
//! title, and an EAN or a SKU: the seeds' rule) are matched at 0.8 or more; otherwise the job
//! waits for a person to give the mapping.

use serde::{Deserialize, Serialize};

use crate::cells::gtin_from_text;

/// A field a column can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Ean,
    Sku,
    SupplierSku,
    Asin,
    Title,
    Description,
    Brand,
    CategoryPath,
    RetailPrice,
    CostPrice,
    SalePrice,
    Msrp,
    Currency,
    Stock,
    ImageUrl,
    /// A variation's parent product (its SKU).
    ParentSku,
}

/// Synonyms of each field, as normalised keys (see [`key`]).
const SYNONYMS: &[(Target, &[&str])] = &[
    (
        Target::Ean,
        &[
            "ean",
            "ean13",
            "ean 13",
            "ean8",
            "ean code",
            "code ean",
            "ean nummer",
            "gtin",
            "gtin13",
            "gtin 13",
            "gtin14",
            "gtin 14",
            "barcode",
            "bar code",
            "code barre",
            "code barres",
            "upc",
            "upc a",
            "strichcode",
            "ean upc",
        ],
    ),
    (
        Target::Sku,
        &[
            "sku",
            "ref",
            "reference",
            "ref produit",
            "reference produit",
            "code article",
            "article",
            "article number",
            "item number",
            "item no",
            "product code",
            "artikelnummer",
            "artikel nr",
            "art nr",
            "artnr",
            "variant sku",
        ],
    ),
    (
        Target::SupplierSku,
        &[
            "supplier sku",
            "supplier ref",
            "supplier reference",
            "vendor sku",
            "ref fournisseur",
            "reference fournisseur",
            "lieferantenartikelnummer",
            "herstellernummer",
            "mpn",
        ],
    ),
    (Target::Asin, &["asin"]),
    (
        Target::Title,
        &[
            "title",
            "titre",
            "titre produit",
            "name",
            "product name",
            "product title",
            "designation",
            "libelle",
            "libelle produit",
            "nom",
            "nom produit",
            "nom du produit",
            "produit",
            "bezeichnung",
            "artikelbezeichnung",
            "produktname",
            "artikelname",
        ],
    ),
    (
        Target::Description,
        &[
            "description",
            "long description",
            "descriptif",
            "description longue",
            "beschreibung",
            "body html",
            "langbeschreibung",
        ],
    ),
    (
        Target::Brand,
        &[
            "brand",
            "marque",
            "marke",
            "manufacturer",
            "fabricant",
            "hersteller",
            "vendor",
        ],
    ),
    (
        Target::CategoryPath,
        &[
            "category",
            "categories",
            "categorie",
            "kategorie",
            "famille",
            "rayon",
            "product type",
            "product category",
        ],
    ),
    (
        Target::RetailPrice,
        &[
            "price",
            "prix",
            "preis",
            "retail price",
            "regular price",
            "prix de vente",
            "prix vente",
            "prix ttc",
            "verkaufspreis",
            "vk",
            "vk preis",
            "variant price",
        ],
    ),
    (
        Target::CostPrice,
        &[
            "cost",
            "cost price",
            "purchase price",
            "buying price",
            "net price",
            "wholesale price",
            "prix achat",
            "prix d achat",
            "prix ht",
            "prix net",
            "pa ht",
            "tarif",
            "einkaufspreis",
            "ek",
            "ek preis",
        ],
    ),
    (
        Target::SalePrice,
        &[
            "sale price",
            "prix promo",
            "prix solde",
            "angebotspreis",
            "aktionspreis",
        ],
    ),
    (
        Target::Msrp,
        &[
            "msrp",
            "rrp",
            "uvp",
            "prix public",
            "prix conseille",
            "ppc",
            "recommended retail price",
            "compare at price",
        ],
    ),
    (
        Target::Currency,
        &["currency", "devise", "monnaie", "waehrung", "wahrung"],
    ),
    (
        Target::Stock,
        &[
            "stock",
            "qty",
            "quantity",
            "quantite",
            "stock quantity",
            "inventory",
            "disponible",
            "bestand",
            "lagerbestand",
            "menge",
            "variant inventory qty",
        ],
    ),
    (
        Target::ImageUrl,
        &[
            "image",
            "images",
            "image url",
            "image src",
            "photo",
            "picture",
            "bild",
            "bild url",
        ],
    ),
    (
        Target::ParentSku,
        &[
            "parent sku",
            "parent reference",
            "parent ref",
            "sku parent",
            "reference parent",
            "ref parent",
            "reference mere",
            "ref mere",
            "elternartikel",
        ],
    ),
];

/// The normalised key of a header: ASCII, lower case, words joined by single spaces.
pub fn key(header: &str) -> String {
    pm_domain::text::sort_key(header)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One column's suggested field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnMatch {
    pub column: usize,
    pub header: String,
    pub target: Target,
    pub confidence: f32,
    /// Why: `header` (an exact synonym), `header_words` (it contains one) or `values`.
    pub reason: &'static str,
}

/// The suggestion for a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub columns: Vec<ColumnMatch>,
    /// Every required field matched at [`CONFIDENT`] or more.
    pub confident: bool,
    /// Required fields without a confident column (`title`, `ean or sku`).
    pub missing: Vec<&'static str>,
}

impl Suggestion {
    pub fn column_of(&self, target: Target) -> Option<usize> {
        self.columns.iter().find(|c| c.target == target).map(|c| c.column)
    }
}

/// The confidence from which a match needs no person.
pub const CONFIDENT: f32 = 0.8;

/// Suggests a mapping from `headers` and up to a few hundred `sample` rows.
pub fn suggest(headers: &[String], sample: &[Vec<String>]) -> Suggestion {
    let mut candidates: Vec<ColumnMatch> = Vec::new();
    for (column, header) in headers.iter().enumerate() {
        let k = key(header);
        if k.is_empty() {
            continue;
        }
        for (target, words) in SYNONYMS {
            let (confidence, reason) = if words.contains(&k.as_str()) {
                (1.0, "header")
            } else if words.iter().any(|w| contains_words(&k, w)) {
                (0.8, "header_words")
            } else {
                continue;
            };
            candidates.push(ColumnMatch {
                column,
                header: header.clone(),
                target: *target,
                confidence,
                reason,
            });
        }
    }
    // A column of valid GTINs is the EAN, whatever its header says (`code`, `ref`, `id`).
    for (column, header) in headers.iter().enumerate() {
        let values: Vec<&str> = sample
            .iter()
            .filter_map(|r| r.get(column))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        if values.len() < 2 {
            continue;
        }
        let valid = values
            .iter()
            .filter(|v| v.len() >= 8 && gtin_from_text(v).is_ok())
            .count();
        if valid * 10 >= values.len() * 9 {
            candidates.push(ColumnMatch {
                column,
                header: header.clone(),
                target: Target::Ean,
                confidence: 0.95,
                reason: "values",
            });
        }
    }
    // Best first; then each field takes its best column, each column its best field.
    candidates.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.column.cmp(&b.column))
            .then(a.target.cmp(&b.target))
    });
    let mut columns: Vec<ColumnMatch> = Vec::new();
    for c in candidates {
        if columns
            .iter()
            .any(|m| m.target == c.target || m.column == c.column)
        {
            continue;
        }
        columns.push(c);
    }
    columns.sort_by_key(|c| c.column);
    let sure = |t: Target| columns.iter().any(|c| c.target == t && c.confidence >= CONFIDENT);
    let mut missing = Vec::new();
    if !sure(Target::Title) {
        missing.push("title");
    }
    if !sure(Target::Ean) && !sure(Target::Sku) {
        missing.push("ean or sku");
    }
    Suggestion {
        confident: missing.is_empty(),
        columns,
        missing,
    }
}

/// Whether the words of `w` appear, in order and whole, in `k`.
fn contains_words(k: &str, w: &str) -> bool {
    let hay: Vec<&str> = k.split(' ').collect();
    let needle: Vec<&str> = w.split(' ').collect();
    hay.windows(needle.len()).any(|win| win == needle.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn french_german_and_english_headers() {
        let fr = suggest(
            &h(&[
                "Code EAN",
                "Désignation",
                "Marque",
                "Prix HT",
                "Quantité",
                "Référence",
            ]),
            &[],
        );
        assert!(fr.confident, "{fr:?}");
        let t: Vec<Target> = fr.columns.iter().map(|c| c.target).collect();
        assert_eq!(
            t,
            [
                Target::Ean,
                Target::Title,
                Target::Brand,
                Target::CostPrice,
                Target::Stock,
                Target::Sku
            ]
        );
        let de = suggest(
            &h(&["Artikelnummer", "Bezeichnung", "Preis", "Bestand", "UVP"]),
            &[],
        );
        assert!(de.confident, "{de:?}");
        assert_eq!(de.column_of(Target::Sku), Some(0));
        assert_eq!(de.column_of(Target::Msrp), Some(4));
        let en = suggest(
            &h(&[
                "gtin",
                "product_name",
                "Regular price",
                "Sale price",
                "Stock quantity",
            ]),
            &[],
        );
        assert!(en.confident, "{en:?}");
        assert_eq!(en.column_of(Target::RetailPrice), Some(2));
        assert_eq!(en.column_of(Target::SalePrice), Some(3));
        assert_eq!(en.column_of(Target::Title), Some(1));
    }

    #[test]
    fn values_find_the_ean_under_any_header() {
        let headers = h(&["code", "libellé"]);
        let rows = vec![
            vec!["4006381333931".to_owned(), "Stylo".to_owned()],
            vec!["0887276302195".to_owned(), "Câble".to_owned()],
            vec!["887276302195".to_owned(), "Câble 2".to_owned()],
        ];
        let s = suggest(&headers, &rows);
        assert_eq!(s.column_of(Target::Ean), Some(0));
        assert_eq!(s.columns[0].reason, "values");
        assert!(s.confident, "{s:?}");
    }

    #[test]
    fn without_a_title_or_a_key_it_waits_for_a_person() {
        let s = suggest(&h(&["foo", "bar", "Prix"]), &[]);
        assert!(!s.confident);
        assert_eq!(s.missing, ["title", "ean or sku"]);
        let s = suggest(&h(&["Nom", "Prix"]), &[]);
        assert_eq!(s.missing, ["ean or sku"]);
        // Each column feeds one field, each field one column.
        let s = suggest(&h(&["EAN", "EAN 13", "Titre produit", "Name"]), &[]);
        assert_eq!(s.column_of(Target::Ean), Some(0));
        assert_eq!(s.columns.iter().filter(|c| c.target == Target::Ean).count(), 1);
        assert_eq!(key("  CODE-EAN_13 "), "code ean 13");
    }
}
