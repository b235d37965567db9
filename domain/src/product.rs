//! Product lifecycle.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a product is in its life: `draft` until reviewed, `active` when sellable, `inactive`
/// when withdrawn for now, `archived` when kept only for history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProductStatus {
    #[default]
    Draft,
    Active,
    Inactive,
    Archived,
}

/// A status string that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown product status {0:?} (expected draft, active, inactive or archived)")]
pub struct UnknownStatus(pub String);

impl ProductStatus {
    pub const ALL: [ProductStatus; 4] = [Self::Draft, Self::Active, Self::Inactive, Self::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Archived => "archived",
        }
    }
}

impl std::str::FromStr for ProductStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl fmt::Display for ProductStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_refuses_unknown() {
        for st in ProductStatus::ALL {
            assert_eq!(st.as_str().parse::<ProductStatus>().unwrap(), st);
        }
        assert_eq!(
            "deleted".parse::<ProductStatus>(),
            Err(UnknownStatus("deleted".into()))
        );
    }
}
