//! Currencies and exact amounts.
//!
//! Prices cross many hands (supplier files, marketplaces, accounting), and a float turns
//! `0.1 + 0.2` into `0.30000000000000004`: amounts are [`rust_decimal::Decimal`] from the
//! string they arrive as to the string they leave as, never an `f64` in between. The limits
//! (15 integer digits, 4 decimal places) are those of the `NUMERIC(19,4)` column that stores
//! them, so every [`Amount`] fits the database exactly and nothing is rounded silently.

use std::fmt;
use std::str::FromStr;

pub use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a currency code or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency {0:?} is not an active iso 4217 code")]
    UnknownCurrency(String),
    #[error("{0:?} is not a decimal number such as 12.50")]
    Malformed(String),
    #[error("{0:?} has more than {max} decimal places", max = Amount::MAX_SCALE)]
    TooPrecise(String),
    #[error("{0:?} has more than {max} digits before the decimal point", max = Amount::MAX_INTEGER_DIGITS)]
    TooLarge(String),
    #[error("{0} must not be negative")]
    Negative(String),
    #[error("cannot combine amounts in {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("{0} is not money (a metal, a test or a fund code): prices need a currency")]
    NotMoney(Currency),
    #[error("{amount} has more decimals than {currency} has minor units ({units})")]
    TooManyDecimals {
        amount: String,
        currency: Currency,
        units: u8,
    },
}

/// ISO 4217 list one (active codes) with their minor units (`None`: "N.A." in the standard,
/// e.g. gold). Codes in a published transition (ANG/XCG, SLL/SLE, BGN) are both kept, so a
/// supplier file written during the transition is not refused. Sorted: looked up by binary
/// search; a test checks the order.
#[rustfmt::skip]
pub(crate) const CODES: &[(&str, Option<u8>)] = &[
    ("AED", Some(2)), ("AFN", Some(2)), ("ALL", Some(2)), ("AMD", Some(2)), ("ANG", Some(2)),
    ("AOA", Some(2)), ("ARS", Some(2)), ("AUD", Some(2)), ("AWG", Some(2)), ("AZN", Some(2)),
    ("BAM", Some(2)), ("BBD", Some(2)), ("BDT", Some(2)), ("BGN", Some(2)), ("BHD", Some(3)),
    ("BIF", Some(0)), ("BMD", Some(2)), ("BND", Some(2)), ("BOB", Some(2)), ("BOV", Some(2)),
    ("BRL", Some(2)), ("BSD", Some(2)), ("BTN", Some(2)), ("BWP", Some(2)), ("BYN", Some(2)),
    ("BZD", Some(2)), ("CAD", Some(2)), ("CDF", Some(2)), ("CHE", Some(2)), ("CHF", Some(2)),
    ("CHW", Some(2)), ("CLF", Some(4)), ("CLP", Some(0)), ("CNY", Some(2)), ("COP", Some(2)),
    ("COU", Some(2)), ("CRC", Some(2)), ("CUC", Some(2)), ("CUP", Some(2)), ("CVE", Some(2)),
    ("CZK", Some(2)), ("DJF", Some(0)), ("DKK", Some(2)), ("DOP", Some(2)), ("DZD", Some(2)),
    ("EGP", Some(2)), ("ERN", Some(2)), ("ETB", Some(2)), ("EUR", Some(2)), ("FJD", Some(2)),
    ("FKP", Some(2)), ("GBP", Some(2)), ("GEL", Some(2)), ("GHS", Some(2)), ("GIP", Some(2)),
    ("GMD", Some(2)), ("GNF", Some(0)), ("GTQ", Some(2)), ("GYD", Some(2)), ("HKD", Some(2)),
    ("HNL", Some(2)), ("HTG", Some(2)), ("HUF", Some(2)), ("IDR", Some(2)), ("ILS", Some(2)),
    ("INR", Some(2)), ("IQD", Some(3)), ("IRR", Some(2)), ("ISK", Some(0)), ("JMD", Some(2)),
    ("JOD", Some(3)), ("JPY", Some(0)), ("KES", Some(2)), ("KGS", Some(2)), ("KHR", Some(2)),
    ("KMF", Some(0)), ("KPW", Some(2)), ("KRW", Some(0)), ("KWD", Some(3)), ("KYD", Some(2)),
    ("KZT", Some(2)), ("LAK", Some(2)), ("LBP", Some(2)), ("LKR", Some(2)), ("LRD", Some(2)),
    ("LSL", Some(2)), ("LYD", Some(3)), ("MAD", Some(2)), ("MDL", Some(2)), ("MGA", Some(2)),
    ("MKD", Some(2)), ("MMK", Some(2)), ("MNT", Some(2)), ("MOP", Some(2)), ("MRU", Some(2)),
    ("MUR", Some(2)), ("MVR", Some(2)), ("MWK", Some(2)), ("MXN", Some(2)), ("MXV", Some(2)),
    ("MYR", Some(2)), ("MZN", Some(2)), ("NAD", Some(2)), ("NGN", Some(2)), ("NIO", Some(2)),
    ("NOK", Some(2)), ("NPR", Some(2)), ("NZD", Some(2)), ("OMR", Some(3)), ("PAB", Some(2)),
    ("PEN", Some(2)), ("PGK", Some(2)), ("PHP", Some(2)), ("PKR", Some(2)), ("PLN", Some(2)),
    ("PYG", Some(0)), ("QAR", Some(2)), ("RON", Some(2)), ("RSD", Some(2)), ("RUB", Some(2)),
    ("RWF", Some(0)), ("SAR", Some(2)), ("SBD", Some(2)), ("SCR", Some(2)), ("SDG", Some(2)),
    ("SEK", Some(2)), ("SGD", Some(2)), ("SHP", Some(2)), ("SLE", Some(2)), ("SLL", Some(2)),
    ("SOS", Some(2)), ("SRD", Some(2)), ("SSP", Some(2)), ("STN", Some(2)), ("SVC", Some(2)),
    ("SYP", Some(2)), ("SZL", Some(2)), ("THB", Some(2)), ("TJS", Some(2)), ("TMT", Some(2)),
    ("TND", Some(3)), ("TOP", Some(2)), ("TRY", Some(2)), ("TTD", Some(2)), ("TWD", Some(2)),
    ("TZS", Some(2)), ("UAH", Some(2)), ("UGX", Some(0)), ("USD", Some(2)), ("USN", Some(2)),
    ("UYI", Some(0)), ("UYU", Some(2)), ("UYW", Some(4)), ("UZS", Some(2)), ("VED", Some(2)),
    ("VES", Some(2)), ("VND", Some(0)), ("VUV", Some(0)), ("WST", Some(2)), ("XAF", Some(0)),
    ("XAG", None), ("XAU", None), ("XBA", None), ("XBB", None), ("XBC", None),
    ("XBD", None), ("XCD", Some(2)), ("XCG", Some(2)), ("XDR", None), ("XOF", Some(0)),
    ("XPD", None), ("XPF", Some(0)), ("XPT", None), ("XSU", None), ("XTS", None),
    ("XUA", None), ("XXX", None), ("YER", Some(2)), ("ZAR", Some(2)), ("ZMW", Some(2)),
    ("ZWG", Some(2)),
];

/// An active ISO 4217 currency code, held upper-case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    /// Index into [`CODES`]: the code and its minor units in one small value.
    index: u16,
}

impl Currency {
    /// Parses a three-letter code; case is ignored (`eur` is `EUR`), surrounding white space too.
    pub fn parse(input: &str) -> Result<Self, MoneyError> {
        let code = input.trim().to_ascii_uppercase();
        CODES
            .binary_search_by(|(c, _)| (*c).cmp(code.as_str()))
            .ok()
            .and_then(|i| u16::try_from(i).ok())
            .map(|index| Self { index })
            .ok_or_else(|| MoneyError::UnknownCurrency(input.to_owned()))
    }

    pub fn as_str(&self) -> &'static str {
        CODES[usize::from(self.index)].0
    }

    /// Whether people pay with it: not a metal (XAU), a fund or test code (XTS, XXX), which
    /// have no minor units.
    pub fn is_money(&self) -> bool {
        self.minor_units().is_some()
    }

    /// Digits after the decimal point in the currency's usual notation (2 for EUR, 0 for JPY,
    /// 3 for KWD); `None` for units without one (gold, SDR).
    pub fn minor_units(&self) -> Option<u8> {
        CODES[usize::from(self.index)].1
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An exact decimal amount that fits `NUMERIC(19,4)`. It may be negative (a discount, a
/// correction); callers that need a non-negative one say so with [`Amount::parse_non_negative`]
/// or [`Amount::non_negative`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(Decimal);

impl Amount {
    /// Decimal places kept; more is refused rather than rounded.
    pub const MAX_SCALE: u32 = 4;
    /// Digits before the decimal point.
    pub const MAX_INTEGER_DIGITS: u32 = 15;

    pub const ZERO: Amount = Amount(Decimal::ZERO);

    /// Parses `12`, `12.5`, `-0.0001`, `+3.10`. Only ASCII digits, one optional sign and one
    /// optional point with digits on both sides: no exponent, no thousands separator, no comma
    /// (whether `1,234` means 1234 or 1.234 depends on who wrote it; the importer decides that,
    /// not this type). Trailing zeros beyond four places are fine (`1.50000` is 1.5).
    pub fn parse(input: &str) -> Result<Self, MoneyError> {
        let s = input.trim();
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        let (int, frac) = match digits.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (digits, None),
        };
        let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !frac.is_none_or(all_digits) {
            return Err(MoneyError::Malformed(input.to_owned()));
        }
        if int.trim_start_matches('0').len() > Self::MAX_INTEGER_DIGITS as usize {
            return Err(MoneyError::TooLarge(input.to_owned()));
        }
        let sign = if s.starts_with('-') { "-" } else { "" };
        let exact = match frac {
            Some(frac) if frac.trim_end_matches('0').len() > Self::MAX_SCALE as usize => {
                return Err(MoneyError::TooPrecise(input.to_owned()));
            }
            // Keep at most MAX_SCALE places of the (zero) tail: the column's scale.
            Some(frac) => format!(
                "{sign}{int}.{}",
                &frac[..frac.len().min(Self::MAX_SCALE as usize)]
            ),
            None => format!("{sign}{int}"),
        };
        Decimal::from_str_exact(&exact)
            .map(Self)
            .map_err(|_| MoneyError::Malformed(input.to_owned()))
    }

    /// [`Amount::parse`], refusing a negative value.
    pub fn parse_non_negative(input: &str) -> Result<Self, MoneyError> {
        Self::parse(input)?.non_negative()
    }

    /// Checks a decimal against the limits (a database read, an arithmetic result).
    pub fn new(d: Decimal) -> Result<Self, MoneyError> {
        if d.round_dp(Self::MAX_SCALE) != d {
            return Err(MoneyError::TooPrecise(d.to_string()));
        }
        let d = if d.scale() > Self::MAX_SCALE {
            d.round_dp(Self::MAX_SCALE)
        } else {
            d
        };
        if d.trunc().abs() >= Decimal::from(10_i64.pow(Self::MAX_INTEGER_DIGITS)) {
            return Err(MoneyError::TooLarge(d.to_string()));
        }
        Ok(Self(d))
    }

    pub fn decimal(&self) -> Decimal {
        self.0
    }

    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    pub fn non_negative(self) -> Result<Self, MoneyError> {
        if self.is_negative() {
            return Err(MoneyError::Negative(self.to_string()));
        }
        Ok(self)
    }

    /// Sum, or `None` when it leaves the column's range.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).and_then(|d| Self::new(d).ok())
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).and_then(|d| Self::new(d).ok())
    }

    /// The same value without trailing zeros, but with at least `places` decimal places:
    /// one spelling per value, whichever database it came back from (PostgreSQL answers
    /// `12.5000` for what SQLite keeps as `12.5`).
    pub fn with_places(self, places: u32) -> Self {
        let mut d = self.0.normalize();
        if d.scale() < places {
            d.rescale(places.min(Self::MAX_SCALE));
        }
        Self(d)
    }
}

impl FromStr for Amount {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    /// Strings only: a JSON number has usually been through a float already.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = decimal_str::deserialize_string(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount in a currency. Built with [`Money::new`], which gives the amount at least the
/// currency's minor units (`12.5 EUR` is `12.50`), so equal values print alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    amount: Amount,
    currency: Currency,
}

impl Money {
    pub fn new(amount: Amount, currency: Currency) -> Self {
        let places = currency.minor_units().map_or(0, u32::from);
        Self {
            amount: amount.with_places(places),
            currency,
        }
    }

    /// Parses a code and an amount; the error says which of the two was wrong.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let currency = Currency::parse(currency)?;
        Ok(Self::new(Amount::parse(amount)?, currency))
    }

    pub fn amount(&self) -> Amount {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// What a price must be besides non-negative: in a currency people pay with (not gold,
    /// not XTS or XXX), with no more decimals than the currency's minor units (`300.5 JPY` is
    /// refused, `12.50 EUR` is fine).
    pub fn check_price(&self) -> Result<(), MoneyError> {
        let Some(units) = self.currency.minor_units() else {
            return Err(MoneyError::NotMoney(self.currency));
        };
        if self.amount.decimal().normalize().scale() > u32::from(units) {
            return Err(MoneyError::TooManyDecimals {
                amount: self.amount.decimal().normalize().to_string(),
                currency: self.currency,
                units,
            });
        }
        Ok(())
    }

    /// Sum of two amounts in the same currency.
    pub fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        self.amount
            .checked_add(other.amount)
            .map(|a| Self::new(a, self.currency))
            .ok_or_else(|| MoneyError::TooLarge(format!("{} + {}", self.amount, other.amount)))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Serde for a bare [`Decimal`] as a string (`#[serde(with = "pm_domain::money::decimal_str")]`),
/// for decimals that are not amounts (attribute values): exact both ways, never a float.
pub mod decimal_str {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let s = deserialize_string(d)?;
        let t = s.trim();
        if t.is_empty() || t.contains(['e', 'E', '_']) {
            return Err(serde::de::Error::custom(MoneyError::Malformed(s)));
        }
        Decimal::from_str_exact(t).map_err(|_| serde::de::Error::custom(MoneyError::Malformed(s)))
    }

    /// A string, with a clear message when it is a number.
    pub(super) fn deserialize_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number in a string, such as \"12.50\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    #[test]
    fn codes_are_sorted_unique_and_upper_case() {
        for pair in CODES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} before {:?}", pair[0], pair[1]);
        }
        for (code, _) in CODES {
            assert!(
                code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()),
                "{code}"
            );
        }
    }

    #[test]
    fn currencies_parse_case_insensitively_and_refuse_unknown() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert_eq!(Currency::parse(" USD ").unwrap().to_string(), "USD");
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), Some(0));
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), Some(3));
        assert_eq!(Currency::parse("XAU").unwrap().minor_units(), None);
        for bad in ["", "EU", "EURO", "ABC", "DEM", "€", "E U"] {
            assert_eq!(
                Currency::parse(bad),
                Err(MoneyError::UnknownCurrency(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn amounts_parse_exactly() {
        let sum = amount("0.1").checked_add(amount("0.2")).unwrap();
        assert_eq!(sum, amount("0.3"));
        assert_eq!(sum.to_string(), "0.3");
        assert_eq!(amount("19.9999").to_string(), "19.9999");
        assert_eq!(amount("+3.10").to_string(), "3.10");
        assert_eq!(amount("-0.0001").to_string(), "-0.0001");
        assert_eq!(amount("1.500000").to_string(), "1.5000");
        assert_eq!(amount("999999999999999.9999").to_string(), "999999999999999.9999");
        assert_eq!(amount("000012").to_string(), "12");
    }

    #[test]
    fn malformed_and_out_of_range_amounts_are_refused() {
        for bad in [
            "", "abc", "1e3", "1,5", "1.", ".5", "--1", "1.2.3", "١٢", "NaN", "inf", "1 000",
        ] {
            assert_eq!(
                Amount::parse(bad),
                Err(MoneyError::Malformed(bad.into())),
                "{bad}"
            );
        }
        assert!(matches!(Amount::parse("1.00001"), Err(MoneyError::TooPrecise(_))));
        assert!(matches!(
            Amount::parse("1000000000000000"),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            Amount::parse_non_negative("-1"),
            Err(MoneyError::Negative(_))
        ));
        assert_eq!(Amount::parse_non_negative("-0").unwrap(), Amount::ZERO);
        assert!(Amount::new(Decimal::new(1, 5)).is_err());
    }

    #[test]
    fn money_spells_one_value_one_way() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::new(amount("12.5"), eur).amount().to_string(), "12.50");
        assert_eq!(Money::new(amount("12.5000"), eur).amount().to_string(), "12.50");
        assert_eq!(Money::new(amount("19.9999"), eur).amount().to_string(), "19.9999");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::new(amount("1000.0000"), jpy).amount().to_string(), "1000");
        let sum = Money::parse("0.1", "EUR")
            .unwrap()
            .checked_add(Money::parse("0.2", "EUR").unwrap())
            .unwrap();
        assert_eq!(sum.to_string(), "0.30 EUR");
        assert!(matches!(
            Money::parse("1", "EUR")
                .unwrap()
                .checked_add(Money::parse("1", "USD").unwrap()),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        assert!(matches!(
            Money::parse("1", "ZZZ"),
            Err(MoneyError::UnknownCurrency(_))
        ));
    }

    #[test]
    fn serde_uses_strings_only() {
        let m = Money::parse("12.5", "eur").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"12.50","currency":"EUR"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Amount>("12.5").is_err());
        assert!(serde_json::from_str::<Amount>(r#""1e2""#).is_err());
        assert!(serde_json::from_str::<Currency>(r#""XYZ""#).is_err());
    }
}
