//! Amazon Standard Identification Number.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an ASIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("asin must be 10 letters or digits, found {0:?}")]
pub struct AsinError(pub String);

/// A 10-character ASIN, upper-cased.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asin(String);

impl Asin {
    pub fn parse(input: &str) -> Result<Self, AsinError> {
        let s = input.trim();
        if s.len() == 10 && s.chars().all(|c| c.is_ascii_alphanumeric()) {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(AsinError(input.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Asin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Asin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Asin({})", self.0)
    }
}

impl Serialize for Asin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Asin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_uppercases() {
        assert_eq!(Asin::parse("b07n4m94x4").unwrap().as_str(), "B07N4M94X4");
        assert!(Asin::parse("B07N4M94X").is_err());
        assert!(Asin::parse("B07N4M94X-").is_err());
    }
}
