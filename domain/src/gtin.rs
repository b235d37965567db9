//! GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) parsing and normalisation.
//!
//! All four are the same number space: a GTIN-14 left-padded with zeros. Amazon's catalogue is
//! indexed by GTIN, and one product reaches us as UPC `887276302195` from one supplier and EAN
//! `0887276302195` from another, so we store one canonical form: the 13-digit EAN when the
//! GTIN-14 starts with a zero (EAN-13, UPC-A and EAN-8 all do), otherwise the 14 digits.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a GTIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtinError {
    #[error("gtin must not be empty")]
    Empty,
    #[error("gtin must contain only digits, found {0:?}")]
    NotDigits(char),
    #[error("gtin must have 8, 12, 13 or 14 digits, found {0}")]
    BadLength(usize),
    #[error("gtin check digit is {found}, expected {expected}")]
    BadCheckDigit { found: u8, expected: u8 },
    #[error("gtin of zeros only is a placeholder, not a product's code")]
    Zeros,
}

/// A GTIN with a valid check digit, held in its canonical form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin {
    /// The GTIN-14 digits as ASCII; the canonical form is a suffix of it.
    digits: [u8; 14],
}

impl Gtin {
    /// Parses a GTIN-8, -12, -13 or -14. Surrounding white space is ignored; anything else that is
    /// not a digit is refused (Excel's `4.00638E+12` has lost digits and cannot be repaired).
    pub fn parse(input: &str) -> Result<Self, GtinError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(GtinError::Empty);
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_digit()) {
            return Err(GtinError::NotDigits(c));
        }
        let len = s.len();
        if !matches!(len, 8 | 12 | 13 | 14) {
            return Err(GtinError::BadLength(len));
        }
        let mut digits = [b'0'; 14];
        digits[14 - len..].copy_from_slice(s.as_bytes());
        let expected = check_digit(&digits[..13]);
        let found = digits[13] - b'0';
        if found != expected {
            return Err(GtinError::BadCheckDigit { found, expected });
        }
        if digits.iter().all(|d| *d == b'0') {
            return Err(GtinError::Zeros);
        }
        Ok(Self { digits })
    }

    /// The canonical stored form: 13 digits unless the GTIN-14 has a non-zero indicator digit.
    pub fn as_str(&self) -> &str {
        let start = usize::from(self.digits[0] == b'0');
        // The digits are ASCII by construction.
        std::str::from_utf8(&self.digits[start..]).unwrap_or_default()
    }

    /// The 14-digit form, for matching against identifiers that were padded differently.
    pub fn as_gtin14(&self) -> &str {
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }
}

/// GS1 check digit of the 13 payload digits of a GTIN-14: weights 3 and 1 from the right.
fn check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gtin({})", self.as_str())
    }
}

impl std::str::FromStr for Gtin {
    type Err = GtinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Gtin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Gtin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_length_and_normalises() {
        assert_eq!(Gtin::parse("4006381333931").unwrap().as_str(), "4006381333931");
        // UPC-A and its EAN-13 spelling are the same product.
        let upc = Gtin::parse("887276302195").unwrap();
        assert_eq!(upc, Gtin::parse("0887276302195").unwrap());
        assert_eq!(upc, Gtin::parse("00887276302195").unwrap());
        assert_eq!(upc.as_str(), "0887276302195");
        assert_eq!(upc.as_gtin14(), "00887276302195");
        // EAN-8
        assert_eq!(Gtin::parse("96385074").unwrap().as_str(), "0000096385074");
        // GTIN-14 with an indicator digit keeps 14 digits.
        assert_eq!(Gtin::parse("10012345678902").unwrap().as_str(), "10012345678902");
        assert_eq!(
            Gtin::parse("  4006381333931\n").unwrap().as_str(),
            "4006381333931"
        );
    }

    #[test]
    fn refuses_bad_input_with_reason() {
        assert_eq!(Gtin::parse(""), Err(GtinError::Empty));
        assert_eq!(
            Gtin::parse("4006381333932"),
            Err(GtinError::BadCheckDigit {
                found: 2,
                expected: 1
            })
        );
        assert_eq!(Gtin::parse("4.00638E+12"), Err(GtinError::NotDigits('.')));
        assert_eq!(Gtin::parse("12345"), Err(GtinError::BadLength(5)));
        assert_eq!(Gtin::parse("400638133393a"), Err(GtinError::NotDigits('a')));
    }

    #[test]
    fn serde_round_trip() {
        let g: Gtin = serde_json::from_str("\"887276302195\"").unwrap();
        assert_eq!(serde_json::to_string(&g).unwrap(), "\"0887276302195\"");
        assert!(serde_json::from_str::<Gtin>("\"887276302196\"").is_err());
    }
}
