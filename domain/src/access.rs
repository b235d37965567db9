//! Permissions and the built-in roles.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a principal may do. Route groups check one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    CatalogRead,
    /// Cost prices (what suppliers charge): margins are not every reader's business, so
    /// `catalog:read` alone sees retail, sale and MSRP prices but no costs.
    CatalogReadCosts,
    CatalogWrite,
    ImportsRead,
    ImportsWrite,
    JobsRun,
    /// Users, roles, API keys, settings and `/admin/*`.
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

impl Permission {
    pub const ALL: [Permission; 7] = [
        Self::CatalogRead,
        Self::CatalogReadCosts,
        Self::CatalogWrite,
        Self::ImportsRead,
        Self::ImportsWrite,
        Self::JobsRun,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CatalogRead => "catalog:read",
            Self::CatalogReadCosts => "catalog:read_costs",
            Self::CatalogWrite => "catalog:write",
            Self::ImportsRead => "imports:read",
            Self::ImportsWrite => "imports:write",
            Self::JobsRun => "jobs:run",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownPermission> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The built-in roles and what they grant: `admin` everything; `manager` catalog (costs
/// included) and imports read-write and jobs; `operator` runs imports and jobs and reads the
/// catalog, costs included (supplier files carry them); `viewer` reads, without costs.
pub const BUILTIN_ROLES: [(&str, &[Permission]); 4] = [
    ("admin", &Permission::ALL),
    (
        "manager",
        &[
            Permission::CatalogRead,
            Permission::CatalogReadCosts,
            Permission::CatalogWrite,
            Permission::ImportsRead,
            Permission::ImportsWrite,
            Permission::JobsRun,
        ],
    ),
    (
        "operator",
        &[
            Permission::CatalogRead,
            Permission::CatalogReadCosts,
            Permission::ImportsRead,
            Permission::JobsRun,
        ],
    ),
    ("viewer", &[Permission::CatalogRead, Permission::ImportsRead]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Ok(p));
        }
        assert!(Permission::parse("root").is_err());
    }
}
