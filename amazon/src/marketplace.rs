//! Amazon marketplaces: country code or marketplace id → id, region and regional SP-API host.
//!
//! Settings and operators speak in country codes (`FR`, `UK`); SP-API wants the marketplace id
//! (`A13V1IB3VIYZZH`) and the host of the marketplace's region. Both spellings parse to the same
//! [`Marketplace`], so a config value can be either. The table is Amazon's list
//! (<https://developer-docs.amazon.com/sp-api/docs/marketplace-ids>, see
//! `docs/external-apis.md` §1.7); `GB` is accepted for `UK` because older guides used it.

use std::fmt;
use std::str::FromStr;

use url::Url;

/// An SP-API region: one host serves every marketplace of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// North America: CA, US, MX, BR.
    NorthAmerica,
    /// Europe, Middle East, Africa and India.
    Europe,
    /// Far East: SG, AU, JP.
    FarEast,
}

impl Region {
    /// The production SP-API host of the region.
    pub fn endpoint(self) -> &'static str {
        match self {
            Region::NorthAmerica => "https://sellingpartnerapi-na.amazon.com",
            Region::Europe => "https://sellingpartnerapi-eu.amazon.com",
            Region::FarEast => "https://sellingpartnerapi-fe.amazon.com",
        }
    }

    /// The sandbox SP-API host of the region (static sandbox responses only).
    pub fn sandbox_endpoint(self) -> &'static str {
        match self {
            Region::NorthAmerica => "https://sandbox.sellingpartnerapi-na.amazon.com",
            Region::Europe => "https://sandbox.sellingpartnerapi-eu.amazon.com",
            Region::FarEast => "https://sandbox.sellingpartnerapi-fe.amazon.com",
        }
    }

    /// Short lowercase name as Amazon writes it in host names (`na`, `eu`, `fe`).
    pub fn code(self) -> &'static str {
        match self {
            Region::NorthAmerica => "na",
            Region::Europe => "eu",
            Region::FarEast => "fe",
        }
    }
}

/// (country code, marketplace id, region), in Amazon's order.
const MARKETPLACES: &[(&str, &str, Region)] = &[
    ("CA", "A2EUQ1WTGCTBG2", Region::NorthAmerica),
    ("US", "ATVPDKIKX0DER", Region::NorthAmerica),
    ("MX", "A1AM78C64UM0Y8", Region::NorthAmerica),
    ("BR", "A2Q3Y263D00KWC", Region::NorthAmerica),
    ("IE", "A28R8C7NBKEWEA", Region::Europe),
    ("ES", "A1RKKUPIHCS9HS", Region::Europe),
    ("UK", "A1F83G8C2ARO7P", Region::Europe),
    ("FR", "A13V1IB3VIYZZH", Region::Europe),
    ("BE", "AMEN7PMS3EDWL", Region::Europe),
    ("NL", "A1805IZSGTT6HS", Region::Europe),
    ("DE", "A1PA6795UKMFR9", Region::Europe),
    ("IT", "APJ6JRA9NG5V4", Region::Europe),
    ("SE", "A2NODRKZP88ZB9", Region::Europe),
    ("ZA", "AE08WJ6YKNBMC", Region::Europe),
    ("PL", "A1C3SOZRARQ6R3", Region::Europe),
    ("EG", "ARBP9OOSHTCHU", Region::Europe),
    ("TR", "A33AVAJ2PDY3EV", Region::Europe),
    ("SA", "A17E79C6D8DWNP", Region::Europe),
    ("AE", "A2VIGQ35RCS4UG", Region::Europe),
    ("IN", "A21TJRUUN4KGV", Region::Europe),
    ("SG", "A19VAU5U5O7RUS", Region::FarEast),
    ("AU", "A39IBJ37TRP1C6", Region::FarEast),
    ("JP", "A1VC38T7YXB528", Region::FarEast),
];

/// Why a string names no marketplace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown amazon marketplace {0:?}: expected a country code such as FR or a marketplace id")]
pub struct UnknownMarketplace(pub String);

/// One Amazon marketplace (an entry of Amazon's table; cheap to copy).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Marketplace {
    country: &'static str,
    id: &'static str,
    region: Region,
}

impl Marketplace {
    /// Parses a country code (case-insensitive; `GB` means `UK`) or a marketplace id.
    pub fn parse(input: &str) -> Result<Self, UnknownMarketplace> {
        let s = input.trim();
        let upper = s.to_ascii_uppercase();
        let code = if upper == "GB" { "UK" } else { upper.as_str() };
        MARKETPLACES
            .iter()
            .find(|(c, id, _)| *c == code || *id == s)
            .map(|&(country, id, region)| Self { country, id, region })
            .ok_or_else(|| UnknownMarketplace(input.to_owned()))
    }

    /// Every marketplace Amazon lists.
    pub fn all() -> impl Iterator<Item = Marketplace> {
        MARKETPLACES
            .iter()
            .map(|&(country, id, region)| Self { country, id, region })
    }

    /// The marketplace id SP-API expects in `marketplaceIds`.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// Amazon's country code (`UK`, not `GB`).
    pub fn country(&self) -> &'static str {
        self.country
    }

    pub fn region(&self) -> Region {
        self.region
    }

    /// The production SP-API host of the marketplace's region.
    pub fn endpoint(&self) -> Url {
        // The hosts are constants that parse; a failure would be a typo caught by the tests.
        Url::parse(self.region.endpoint()).expect("regional sp-api host is a valid url")
    }
}

impl fmt::Debug for Marketplace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Marketplace({} {})", self.country, self.id)
    }
}

impl fmt::Display for Marketplace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.country)
    }
}

impl FromStr for Marketplace {
    type Err = UnknownMarketplace;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_country_codes_and_ids() {
        let fr = Marketplace::parse("FR").unwrap();
        assert_eq!(fr.id(), "A13V1IB3VIYZZH");
        assert_eq!(fr.region(), Region::Europe);
        assert_eq!(fr.endpoint().as_str(), "https://sellingpartnerapi-eu.amazon.com/");
        assert_eq!(Marketplace::parse("A13V1IB3VIYZZH").unwrap(), fr);
        assert_eq!(Marketplace::parse(" fr ").unwrap(), fr);

        let uk = Marketplace::parse("UK").unwrap();
        assert_eq!(uk.id(), "A1F83G8C2ARO7P");
        assert_eq!(Marketplace::parse("gb").unwrap(), uk);
        assert_eq!(uk.country(), "UK");

        assert_eq!(Marketplace::parse("DE").unwrap().id(), "A1PA6795UKMFR9");
        assert_eq!(Marketplace::parse("IT").unwrap().id(), "APJ6JRA9NG5V4");
        assert_eq!(Marketplace::parse("ES").unwrap().id(), "A1RKKUPIHCS9HS");
        let us = Marketplace::parse("US").unwrap();
        assert_eq!(us.id(), "ATVPDKIKX0DER");
        assert_eq!(us.region(), Region::NorthAmerica);
        assert_eq!(us.region().endpoint(), "https://sellingpartnerapi-na.amazon.com");
        let jp = Marketplace::parse("JP").unwrap();
        assert_eq!(jp.region().endpoint(), "https://sellingpartnerapi-fe.amazon.com");
    }

    #[test]
    fn unknown_is_a_typed_error() {
        assert_eq!(Marketplace::parse("XX"), Err(UnknownMarketplace("XX".into())));
        assert!(Marketplace::parse("").is_err());
        // Marketplace ids are case-sensitive; a lowercased id is not Amazon's.
        assert!(Marketplace::parse("a13v1ib3viyzzh").is_err());
    }

    #[test]
    fn table_is_consistent() {
        let all: Vec<_> = Marketplace::all().collect();
        assert_eq!(all.len(), 23);
        for m in &all {
            assert_eq!(Marketplace::parse(m.id()).unwrap(), *m);
            assert_eq!(Marketplace::parse(m.country()).unwrap(), *m);
            let _ = m.endpoint();
        }
    }
}
