//! OpenAPI schemas of the domain values (`utoipa::ToSchema`), written by hand because each
//! type serializes itself by hand: a [`Gtin`] is a string of digits, not a struct of bytes. Each
//! schema says what the value looks like on the wire in both directions; the rules a pattern
//! cannot say (a GTIN's check digit) are in the description, and the server refuses a value
//! that breaks them with a 422 naming the field.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::money::CODES;
use crate::{Amount, Asin, Currency, Gtin, Permission};

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
}

fn done(b: ObjectBuilder) -> RefOr<Schema> {
    RefOr::T(Schema::Object(b.build()))
}

impl PartialSchema for Gtin {
    fn schema() -> RefOr<Schema> {
        done(
            string()
                .pattern(Some("^([0-9]{8}|[0-9]{12,14})$"))
                .description(Some(
                    "A GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) with a valid check digit, not all \
                     zeros. Answered in one canonical form: 13 digits (shorter codes padded \
                     with zeros), or 14 for a GTIN-14 that does not start with 0.",
                ))
                .examples(["4006381333931"]),
        )
    }
}

impl ToSchema for Gtin {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Gtin")
    }
}

impl PartialSchema for Asin {
    fn schema() -> RefOr<Schema> {
        done(
            string()
                .pattern(Some("^[0-9A-Za-z]{10}$"))
                .description(Some(
                    "Amazon's product identifier: 10 letters or digits; answered upper-case.",
                ))
                .examples(["B07N4M94X4"]),
        )
    }
}

impl ToSchema for Asin {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Asin")
    }
}

impl PartialSchema for Currency {
    fn schema() -> RefOr<Schema> {
        done(
            string()
                .enum_values(Some(CODES.iter().map(|(code, _)| *code)))
                .description(Some(
                    "An active ISO 4217 code, answered upper-case (sent in any case). Prices \
                     need one people pay with: not a metal, fund or test code (XAU, XDR, XTS).",
                ))
                .examples(["EUR"]),
        )
    }
}

impl ToSchema for Currency {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Currency")
    }
}

impl PartialSchema for Amount {
    fn schema() -> RefOr<Schema> {
        done(
            string()
                .pattern(Some(r"^[+-]?[0-9]{1,15}(\.[0-9]{1,4})?$"))
                .description(Some(
                    "An exact decimal in a string (a JSON number is refused: it may have been a \
                     float): at most 15 digits before the point and 4 after. Answered without a \
                     sign unless negative, with at least the currency's minor units.",
                ))
                .examples(["19.99"]),
        )
    }
}

impl ToSchema for Amount {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Amount")
    }
}

impl PartialSchema for Permission {
    fn schema() -> RefOr<Schema> {
        done(
            string()
                .enum_values(Some(Permission::ALL.map(Permission::as_str)))
                .description(Some("A permission a role or an API key grants.")),
        )
    }
}

impl ToSchema for Permission {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Permission")
    }
}

fn decimal_string_pattern() -> &'static str {
    r"^[+-]?[0-9]+(\.[0-9]+)?$"
}

/// The schema of an exact decimal that is not an amount (an attribute's number), serialized with
/// `money::decimal_str`: for fields declared `#[schema(value_type = DecimalString)]`.
pub struct DecimalString;

impl PartialSchema for DecimalString {
    fn schema() -> RefOr<Schema> {
        done(
            string()
                .pattern(Some(decimal_string_pattern()))
                .description(Some("An exact decimal in a string, e.g. \"0.1\"."))
                .examples(["0.1"]),
        )
    }
}

impl ToSchema for DecimalString {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DecimalString")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    fn pattern<T: PartialSchema>() -> regex::Regex {
        regex::Regex::new(json::<T>()["pattern"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn examples_are_accepted_by_the_types() {
        for (schema, parse) in [
            (
                json::<Gtin>(),
                (|s: &str| Gtin::parse(s).is_ok()) as fn(&str) -> bool,
            ),
            (json::<Asin>(), |s| Asin::parse(s).is_ok()),
            (json::<Currency>(), |s| Currency::parse(s).is_ok()),
            (json::<Amount>(), |s| Amount::parse(s).is_ok()),
        ] {
            let example = schema["examples"][0].as_str().unwrap();
            assert!(parse(example), "{example}");
        }
    }

    /// What the types answer with matches the patterns the document gives for them.
    #[test]
    fn serialized_values_match_the_patterns() {
        let gtin = pattern::<Gtin>();
        for g in [
            "96385074",
            "887276302195",
            "4006381333931",
            "10012345678902",
            " 4006381333931 ",
        ] {
            let out = serde_json::to_value(Gtin::parse(g).unwrap()).unwrap();
            assert!(gtin.is_match(out.as_str().unwrap()), "{out}");
        }
        let asin = pattern::<Asin>();
        assert!(asin.is_match(Asin::parse("b07n4m94x4").unwrap().as_str()));
        let amount = pattern::<Amount>();
        for a in ["0", "-0.0001", "+3.10", "999999999999999.9999", "12.50000"] {
            let out = serde_json::to_value(Amount::parse(a).unwrap()).unwrap();
            assert!(amount.is_match(out.as_str().unwrap()), "{a} -> {out}");
            assert!(amount.is_match(a) || a.ends_with("000"), "{a}");
        }
        let eur = Currency::parse("EUR").unwrap();
        let m = crate::Money::new(Amount::parse("12.5").unwrap(), eur);
        assert!(amount.is_match(&m.amount().to_string()));
        let decimal = regex::Regex::new(decimal_string_pattern()).unwrap();
        assert!(decimal.is_match("-0.1") && decimal.is_match("12") && !decimal.is_match("1e3"));
    }

    #[test]
    fn enums_list_every_value_as_serialized() {
        let cur = json::<Currency>();
        let codes = cur["enum"].as_array().unwrap();
        assert_eq!(codes.len(), CODES.len());
        for c in codes {
            let c = c.as_str().unwrap();
            let parsed = Currency::parse(c).unwrap();
            assert_eq!(serde_json::to_value(parsed).unwrap(), c);
        }
        let perms = json::<Permission>();
        for p in Permission::ALL {
            assert!(perms["enum"]
                .as_array()
                .unwrap()
                .contains(&serde_json::to_value(p).unwrap()));
        }
    }
}
