//! What a cell means.
//!
//! - **Codes** (EAN, GTIN, UPC): spreadsheets store them as numbers, so their leading zeros go
//!   (`887276302195` for `0887276302195`) and large ones show as `4.006381333931E12`. A number
//!   cell is restored to its digits and left-padded to the GTIN length (leading zeros do not
//!   change a GTIN); a text cell in scientific notation is restored only when it still holds
//!   every digit (`4.006381333931E+12`), and refused when the spreadsheet rounded it
//!   (`3.65275E+11`), even if the padded digits happen to pass the check digit: an invented EAN
//!   would attach the row to somebody else's product.
//! - **Decimals**: `1,50`, `1.234,56`, `1 234,56`, `1,234.56`, `12.5 €` read as exact decimal
//!   strings (`12.50` stays text until the domain's `Amount` parses it), whichever convention the
//!   file uses; a lone comma or dot followed by three digits is ambiguous and decided by the
//!   column's convention when the caller knows it.

use pm_domain::{Gtin, GtinError};
use serde::{Deserialize, Serialize};

/// Why a cell is not a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("{value:?} is in scientific notation with digits lost (the spreadsheet rounded it to {digits} significant digits); export the column as text")]
    DigitsLost { value: String, digits: usize },
    #[error("{0}")]
    Gtin(#[from] GtinError),
    #[error("{0:?} is not a whole number")]
    NotWhole(String),
}

/// A GTIN from a text cell (CSV, or a spreadsheet cell that holds text).
pub fn gtin_from_text(raw: &str) -> Result<Gtin, CodeError> {
    let s = raw.trim();
    if let Some(digits) = scientific_digits(s)? {
        return Ok(Gtin::parse(&pad(&digits))?);
    }
    // Spaces and hyphens inside a code are formatting (`4 006381 333931`).
    let compact: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '\u{a0}')).collect();
    if !compact.is_empty() && compact.chars().all(|c| c.is_ascii_digit()) && compact.len() < 14 {
        if let Ok(g) = Gtin::parse(&compact) {
            return Ok(g);
        }
        // A code that lost its leading zeros in an earlier round trip through a spreadsheet.
        if let Ok(g) = Gtin::parse(&pad(&compact)) {
            return Ok(g);
        }
    }
    Ok(Gtin::parse(&compact)?)
}

/// A GTIN from a spreadsheet's number cell (calamine gives `f64`; integers up to 2^53 are
/// exact, which covers every GTIN).
pub fn gtin_from_number(v: f64) -> Result<Gtin, CodeError> {
    if !v.is_finite() || v < 0.0 || v.fract() != 0.0 || v >= 1e14 {
        return Err(CodeError::NotWhole(v.to_string()));
    }
    let digits = format!("{}", v as u64);
    Ok(Gtin::parse(&pad(&digits))?)
}

/// Left-pads digits to 14 (a GTIN-14 with leading zeros is the same GTIN).
fn pad(digits: &str) -> String {
    format!("{digits:0>14}")
}

/// `Some(digits)` for an exact integer in scientific notation (`4.006381333931E+12`); an
/// error for one whose digits were lost; `None` for anything that is not scientific notation.
fn scientific_digits(s: &str) -> Result<Option<String>, CodeError> {
    let Some(e_at) = s.find(['E', 'e']) else {
        return Ok(None);
    };
    let (mantissa, exp) = (&s[..e_at], &s[e_at + 1..]);
    let Ok(exp) = exp.trim_start_matches('+').parse::<i32>() else {
        return Ok(None);
    };
    let mantissa = mantissa.replace(',', ".");
    let (int, frac) = mantissa.split_once('.').unwrap_or((&mantissa, ""));
    if int.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        || !(0..=20).contains(&exp)
    {
        return Ok(None);
    }
    let frac = frac.trim_end_matches('0');
    let significant = format!("{int}{frac}").trim_start_matches('0').len();
    let places = usize::try_from(exp).unwrap_or(0);
    if frac.len() > places {
        return Err(CodeError::NotWhole(s.to_owned()));
    }
    let value = format!("{int}{frac}{}", "0".repeat(places - frac.len()));
    let value = value.trim_start_matches('0').to_owned();
    // A GTIN has 8 to 14 digits and rarely ends in a run of zeros: a mantissa shorter than
    // the number it stands for means the rest was rounded away.
    if significant < value.len() && value.len() >= 8 {
        return Err(CodeError::DigitsLost {
            value: s.to_owned(),
            digits: significant,
        });
    }
    Ok(Some(value))
}

/// Why a cell is not a decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a number")]
pub struct NotANumber(pub String);

/// Which character separates the decimals in a column, when the caller knows it (in a
/// template: `"auto"`, `"comma"`, `"point"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalMark {
    /// Decide per cell; a lone separator followed by exactly three digits (`1,500`) is read as
    /// a decimal mark (supplier prices rarely reach thousands, while `1,500` kg does not occur
    /// in a price column).
    #[default]
    Auto,
    Comma,
    #[serde(rename = "point", alias = "dot")]
    Dot,
}

/// A decimal number from a text cell, as a plain decimal string (`-1234.56`): thousands
/// separators (spaces, `'`, and the mark that is not the decimal one) removed, currency
/// symbols and codes around it ignored.
pub fn decimal(raw: &str, mark: DecimalMark) -> Result<String, NotANumber> {
    let bad = || NotANumber(raw.to_owned());
    let s: String = raw
        .trim()
        .trim_matches(|c: char| c.is_alphabetic() || matches!(c, '€' | '$' | '£' | '¥' | ' ' | '\u{a0}'))
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\''))
        .collect();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return Err(bad());
    }
    let (commas, dots) = (body.matches(',').count(), body.matches('.').count());
    let decimal_mark = match mark {
        DecimalMark::Comma => Some(','),
        DecimalMark::Dot => Some('.'),
        DecimalMark::Auto => match (commas, dots) {
            (0, 0) => None,
            // Both: the last one is the decimal mark (`1.234,56`, `1,234.56`).
            (_, _) if commas > 0 && dots > 0 => {
                if body.rfind(',') > body.rfind('.') {
                    Some(',')
                } else {
                    Some('.')
                }
            }
            (1, 0) => Some(','),
            (0, 1) => Some('.'),
            // Several of one kind: thousands separators (`1,234,567`, `1.234.567`).
            (_, 0) => Some('.'),
            _ => Some(','),
        },
    };
    let thousands = match decimal_mark {
        Some(',') => '.',
        _ => ',',
    };
    let cleaned: String = body.chars().filter(|c| *c != thousands).collect();
    let normal = match decimal_mark {
        Some(',') => cleaned.replace(',', "."),
        _ => cleaned,
    };
    if normal.matches('.').count() > 1 || normal == "." {
        return Err(bad());
    }
    let normal = if normal.starts_with('.') {
        format!("0{normal}")
    } else {
        normal
    };
    let normal = normal.trim_end_matches('.').to_owned();
    Ok(if neg { format!("-{normal}") } else { normal })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_cells_get_their_leading_zeros_back() {
        assert_eq!(
            gtin_from_number(887276302195.0).unwrap().as_str(),
            "0887276302195"
        );
        assert_eq!(
            gtin_from_number(4006381333931.0).unwrap().as_str(),
            "4006381333931"
        );
        // EAN-8 that lost its leading zero
        assert_eq!(gtin_from_number(1234565.0).unwrap().as_gtin14(), "00000001234565");
        assert!(gtin_from_number(4006381333931.5).is_err());
        assert!(gtin_from_number(-1.0).is_err());
        assert!(gtin_from_number(f64::NAN).is_err());
        assert!(matches!(
            gtin_from_number(4006381333932.0),
            Err(CodeError::Gtin(_))
        ));
    }

    #[test]
    fn scientific_text_is_restored_only_when_no_digit_was_lost() {
        assert_eq!(
            gtin_from_text("4.006381333931E+12").unwrap().as_str(),
            "4006381333931"
        );
        assert_eq!(
            gtin_from_text("4,006381333931E12").unwrap().as_str(),
            "4006381333931"
        );
        assert_eq!(
            gtin_from_text("8.87276302195E11").unwrap().as_str(),
            "0887276302195"
        );
        // Excel's rounding: refused with that reason, even though 365275000000 padded to
        // 0365275000000 might pass a check digit by chance.
        let e = gtin_from_text("3.65275E+11").unwrap_err();
        assert!(matches!(e, CodeError::DigitsLost { digits: 6, .. }), "{e}");
        assert!(e.to_string().contains("digits lost"), "{e}");
        assert!(matches!(
            gtin_from_text("4.00638E+12"),
            Err(CodeError::DigitsLost { .. })
        ));
    }

    #[test]
    fn text_codes_tolerate_formatting_and_lost_zeros_but_not_garbage() {
        assert_eq!(
            gtin_from_text(" 4006381333931 ").unwrap().as_str(),
            "4006381333931"
        );
        assert_eq!(
            gtin_from_text("4 006381 333931").unwrap().as_str(),
            "4006381333931"
        );
        assert_eq!(gtin_from_text("887276302195").unwrap().as_str(), "0887276302195");
        assert!(matches!(
            gtin_from_text("40063813339310"),
            Err(CodeError::Gtin(_))
        ));
        assert!(matches!(gtin_from_text("ABC"), Err(CodeError::Gtin(_))));
        assert!(matches!(
            gtin_from_text(""),
            Err(CodeError::Gtin(GtinError::Empty))
        ));
    }

    #[test]
    fn decimals_in_every_convention() {
        let d = |s: &str| decimal(s, DecimalMark::Auto).unwrap();
        assert_eq!(d("1,50"), "1.50");
        assert_eq!(d("1.50"), "1.50");
        assert_eq!(d("1.234,56"), "1234.56");
        assert_eq!(d("1,234.56"), "1234.56");
        assert_eq!(d("1 234,56 €"), "1234.56");
        assert_eq!(d("EUR 12.5"), "12.5");
        assert_eq!(d("-3"), "-3");
        assert_eq!(d("1.234.567"), "1234567");
        assert_eq!(d("1,234,567"), "1234567");
        assert_eq!(d("1'234.5"), "1234.5");
        assert_eq!(d(",5"), "0.5");
        assert_eq!(decimal("1.500", DecimalMark::Comma).unwrap(), "1500");
        assert_eq!(decimal("1,500", DecimalMark::Dot).unwrap(), "1500");
        for bad in ["", "abc", "1,2,3.4.5", "--1", ".", "1.2.3,4,5"] {
            assert!(decimal(bad, DecimalMark::Auto).is_err(), "{bad}");
        }
    }
}
