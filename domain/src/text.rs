//! The one rule for every text a person or a file gives us, on every backend: no NUL or other
//! control characters (PostgreSQL refuses NUL outright, SQLite stores it and every consumer
//! downstream chokes on it), at most `max` characters, and, for a required text, at least one
//! visible character (not only spaces or zero-width ones).
//!
//! Multi-line texts (descriptions) may hold line feeds, carriage returns and tabs.

/// Where a text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A name, a title, a code: one line.
    Line,
    /// A description: line breaks and tabs allowed.
    Multiline,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must have a visible character, not only spaces or invisible ones")]
    Invisible,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control characters (found U+{0:04X})")]
    Control(u32),
}

/// Characters that show nothing: white space and the zero-width ones.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}' | '\u{034F}'
        )
}

fn allowed_control(c: char, kind: TextKind) -> bool {
    kind == TextKind::Multiline && matches!(c, '\n' | '\r' | '\t')
}

/// Checks `value` (as given, not trimmed): control characters and length. An empty value
/// passes; use [`check_required`] when it must not.
pub fn check(value: &str, kind: TextKind, max: usize) -> Result<(), TextError> {
    // Most texts are printable ASCII (an import checks every cell of every row): one byte
    // per character and nothing to refuse. One pass without an early exit, which the compiler
    // turns into vector instructions; anything else takes the character loop below.
    let unusual = value
        .bytes()
        .fold(false, |acc, b| acc | !(0x20..0x7F).contains(&b));
    if !unusual {
        return if value.len() > max {
            Err(TextError::TooLong(max))
        } else {
            Ok(())
        };
    }
    let mut n = 0usize;
    for c in value.chars() {
        if c.is_control() && !allowed_control(c, kind) {
            return Err(TextError::Control(c as u32));
        }
        n += 1;
    }
    if n > max {
        return Err(TextError::TooLong(max));
    }
    Ok(())
}

/// [`check`], and at least one visible character.
pub fn check_required(value: &str, kind: TextKind, max: usize) -> Result<(), TextError> {
    if value.is_empty() {
        return Err(TextError::Empty);
    }
    check(value, kind, max)?;
    if value.chars().all(is_invisible) {
        return Err(
            if value.trim().is_empty() && value.chars().all(char::is_whitespace) {
                TextError::Empty
            } else {
                TextError::Invisible
            },
        );
    }
    Ok(())
}

/// A URL slug derived from a name: transliterated to ASCII (`Électroménager` → `electromenager`,
/// `Straße` → `strasse`), lower-case, every run of anything but letters and digits a single
/// hyphen, at most `max` bytes (cut at a hyphen when one is near). Empty when the name has no
/// letter or digit to keep, so that the caller can ask for a slug instead of inventing one.
pub fn slugify(name: &str, max: usize) -> String {
    let ascii = deunicode::deunicode(name);
    let mut out = String::with_capacity(ascii.len().min(max));
    let mut hyphen = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if hyphen && !out.is_empty() {
                out.push('-');
            }
            hyphen = false;
            out.push(c.to_ascii_lowercase());
        } else {
            hyphen = true;
        }
    }
    if out.len() > max {
        out.truncate(max);
        // A word cut in the middle reads worse than a shorter slug, unless the cut loses most.
        if let Some(at) = out.rfind('-').filter(|&at| at >= max / 2) {
            out.truncate(at);
        }
        while out.ends_with('-') {
            out.pop();
        }
    }
    out
}

/// A key that orders and compares texts without regard to case or accents, the same on every
/// backend: `Éclair`, `eclair` and `ECLAIR` share one key. Transliterated to ASCII and
/// lower-cased, so the databases compare it byte by byte.
pub fn sort_key(value: &str) -> String {
    deunicode::deunicode(value).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_derived_in_ascii_words_and_cut_at_a_hyphen() {
        assert_eq!(slugify("Électroménager & Maison", 120), "electromenager-maison");
        assert_eq!(slugify("  Straße / Œuvres  ", 120), "strasse-oeuvres");
        assert_eq!(slugify("TV 4K -- 55\"", 120), "tv-4k-55");
        assert_eq!(slugify("!!!", 120), "");
        assert_eq!(slugify("alpha beta gamma", 12), "alpha-beta");
        assert_eq!(slugify("abcdefghijklmnop", 8), "abcdefgh");
        assert!(slugify(&"a ".repeat(200), 120).len() <= 120);
    }

    #[test]
    fn sort_keys_ignore_case_and_accents() {
        assert_eq!(sort_key("Éclair"), sort_key("eclair"));
        assert_eq!(sort_key("ECLAIR"), "eclair");
        assert!(sort_key("éclair") < sort_key("Zèbre"));
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_multiline_text() {
        assert_eq!(
            check("adm\u{0}in", TextKind::Line, 100),
            Err(TextError::Control(0))
        );
        assert_eq!(
            check("bell\u{7}", TextKind::Line, 100),
            Err(TextError::Control(7))
        );
        assert_eq!(
            check("esc\u{1b}[31m", TextKind::Multiline, 100),
            Err(TextError::Control(0x1b))
        );
        assert_eq!(
            check("c1\u{85}", TextKind::Line, 100),
            Err(TextError::Control(0x85))
        );
        assert_eq!(check("a\nb", TextKind::Line, 100), Err(TextError::Control(10)));
        assert_eq!(check("a\r\n\tb", TextKind::Multiline, 100), Ok(()));
        assert_eq!(
            check("del\u{7f}", TextKind::Multiline, 100),
            Err(TextError::Control(0x7f))
        );
        // A control character is reported before the length, in ASCII as in any text.
        assert_eq!(check("abc\u{1}", TextKind::Line, 2), Err(TextError::Control(1)));
        assert_eq!(check("abc", TextKind::Line, 3), Ok(()));
        assert_eq!(check("abcd", TextKind::Line, 3), Err(TextError::TooLong(3)));
        assert_eq!(check("Crème brûlée 東京", TextKind::Line, 100), Ok(()));
    }

    #[test]
    fn length_counts_characters_and_required_texts_need_a_visible_one() {
        assert_eq!(check("éé", TextKind::Line, 2), Ok(()));
        assert_eq!(check("ééé", TextKind::Line, 2), Err(TextError::TooLong(2)));
        assert_eq!(check_required("", TextKind::Line, 10), Err(TextError::Empty));
        assert_eq!(check_required("   ", TextKind::Line, 10), Err(TextError::Empty));
        assert_eq!(
            check_required("\u{200B}\u{200B}", TextKind::Line, 10),
            Err(TextError::Invisible)
        );
        assert_eq!(check_required(" x ", TextKind::Line, 10), Ok(()));
    }
}
