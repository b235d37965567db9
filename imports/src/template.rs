//! A supplier's mapping template: which columns feed which field (or attribute), through which
//! transforms, and how its files are laid out. The service stores it as JSON with the supplier
//! and gives it with every import of theirs, so a file that the suggestion cannot read alone
//! (`Prix HT` that is a cost, a brand and a model to join into a title, a category written
//! `Maison/Cuisine`) is mapped once by a person and then imports unattended.
//!
//! ```json
//! {
//!   "columns": [
//!     {"source": "Code EAN", "target": "ean"},
//!     {"source": "Désignation", "target": "title", "transforms": [{"op": "trim"}, {"op": "case", "to": "title"}]},
//!     {"source": ["Marque", "Modèle"], "target": "title", "transforms": [{"op": "concat", "separator": " "}]},
//!     {"source": "Prix HT", "target": "cost_price", "transforms": [{"op": "decimal_comma"}, {"op": "multiply", "by": "1.2"}, {"op": "round", "places": 2}]},
//!     {"source": "Couleur", "target": {"attribute": "color"}},
//!     {"target": "brand", "transforms": [{"op": "default", "value": "Acme"}]}
//!   ],
//!   "currency": "EUR", "decimal_mark": "comma", "header_line": null, "skip_rows": 0,
//!   "sheet": null, "delimiter": null, "encoding": null
//! }
//! ```
//!
//! A rule's value starts as its source cells (none for a rule without a source, one per
//! column of a list) and goes through its transforms in order; each transform applies to every
//! part (`split` makes several, `concat` joins the non-empty ones into one). Then:
//! - a single-valued field takes the first non-empty part (so a list of columns without
//!   `concat` is a fallback: the first filled one), and of several rules for the same field
//!   the first that gives a non-empty value wins (`Désignation`, else brand + model);
//! - `category_path` joins its parts as levels with ` > `;
//! - `image_url` takes every part of every rule (several image columns add up);
//! - an attribute takes the first non-empty part, the first rule of a name wins.
//!
//! Numbers are exact decimals ([`pm_domain::Decimal`]), never floats: `multiply`, `markup` and
//! `round` (half away from zero, as price lists round) read a cell with the file's decimal
//! mark, or the result of a previous numeric transform as it is. A cell they cannot read makes
//! its row a reject (`bad_number`, naming the transform), never the file.
//!
//! [`Template::check`] refuses a template that could never work (a regex that does not
//! compile or is too large, a factor that is not a number, no title or no key) when it is
//! saved; [`Template::resolve`] finds its columns in a file's header and compiles its regexes
//! once for the whole file.

use std::fmt;

use pm_domain::{text, Currency, Decimal, TextKind};
use regex::{Regex, RegexBuilder};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cells::{decimal, DecimalMark};
use crate::mapping::{key, Target};
use crate::rows::{FileError, Value, Values, MAX_CELL_BYTES, MAX_COLUMNS};
use crate::sheets::SheetRef;

/// The most rules a template may have (one per column, at most).
pub const MAX_RULES: usize = MAX_COLUMNS;
/// The most transforms in one rule.
pub const MAX_TRANSFORMS: usize = 32;
/// The most source columns of one rule.
pub const MAX_SOURCES: usize = 32;
/// The longest regex pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 1000;
/// The most memory one compiled regex (and its lazy DFA) may take: a template cannot make the
/// importer allocate more than this per pattern, whatever it asks for (`a{1000}{1000}`).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The longest text parameter (a separator, a replacement, a default), in characters.
const MAX_PARAM_CHARS: usize = 1000;
/// Decimal places `round` may keep: those of an amount.
const MAX_ROUND_PLACES: u32 = 4;

/// A supplier's mapping template (see the module docs for its JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The rules, in priority order.
    pub columns: Vec<ColumnRule>,
    /// The currency of the file's prices.
    #[serde(default)]
    pub currency: Option<Currency>,
    /// The decimal mark of the file's numbers: `auto` (default), `comma` or `point`.
    #[serde(default)]
    pub decimal_mark: DecimalMark,
    /// The header's physical line (text) or row (sheet), 1-based; `null`: detected.
    #[serde(default)]
    pub header_line: Option<u64>,
    /// Records to pass over before looking for the header (when `header_line` is `null`).
    #[serde(default)]
    pub skip_rows: usize,
    /// Spreadsheets: the sheet, by name or 0-based index; `null`: the first.
    #[serde(default)]
    pub sheet: Option<TemplateSheet>,
    /// Text files: `;`, `,`, `|` or `tab`; `null`: detected.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Text files: a WHATWG label (`windows-1252`); `null`: detected.
    #[serde(default)]
    pub encoding: Option<String>,
}

/// A template's sheet: a name or a 0-based index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TemplateSheet {
    Index(usize),
    Name(String),
}

/// One rule: source column(s) → target, through transforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// Header name(s), compared like a named mapping's (case, accents and punctuation
    /// ignored); none for a rule that only gives a `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    pub target: RuleTarget,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
}

/// A rule's source: one column (`"Prix HT"`) or several (`["Marque", "Modèle"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Column(String),
    Columns(Vec<String>),
}

impl Source {
    /// The column names.
    pub fn names(&self) -> &[String] {
        match self {
            Source::Column(c) => std::slice::from_ref(c),
            Source::Columns(c) => c,
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Source::Column(c) => c.serialize(s),
            Source::Columns(c) => c.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(c) => Ok(Source::Column(c)),
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(c) => Ok(c),
                    _ => Err(D::Error::custom("a source list holds column names (strings)")),
                })
                .collect::<Result<_, _>>()
                .map(Source::Columns),
            _ => Err(D::Error::custom(
                "a source is a column name or a list of column names",
            )),
        }
    }
}

/// What a rule feeds: a field (`"title"`, `"cost_price"`, the names of
/// [`Target`]) or an attribute (`{"attribute": "color"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleTarget {
    Field(Target),
    Attribute(String),
}

impl Serialize for RuleTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Attribute<'a> {
            attribute: &'a str,
        }
        match self {
            RuleTarget::Field(t) => t.serialize(s),
            RuleTarget::Attribute(a) => Attribute { attribute: a }.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RuleTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            v @ serde_json::Value::String(_) => Target::deserialize(v)
                .map(RuleTarget::Field)
                .map_err(D::Error::custom),
            serde_json::Value::Object(m) if m.len() == 1 => match m.get("attribute") {
                Some(serde_json::Value::String(a)) => Ok(RuleTarget::Attribute(a.clone())),
                _ => Err(D::Error::custom(
                    "an attribute target is {\"attribute\": \"its name\"}",
                )),
            },
            _ => Err(D::Error::custom(
                "a target is a field name (\"title\", \"ean\"...) or {\"attribute\": \"name\"}",
            )),
        }
    }
}

impl fmt::Display for RuleTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleTarget::Field(t) => match serde_json::to_value(t) {
                Ok(serde_json::Value::String(name)) => f.write_str(&name),
                _ => write!(f, "{t:?}"),
            },
            RuleTarget::Attribute(a) => write!(f, "attribute {a:?}"),
        }
    }
}

/// The letter case a `case` transform gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    Lower,
    Upper,
    /// Each word's first letter upper case, the others lower case.
    Title,
}

/// A transform, `{"op": "...", ...}`. Numbers are given as decimal strings (`"1.2"`), not
/// JSON numbers, which have usually been through a float.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// White space around. (Unit-like variants are written `{}` so that serde refuses
    /// unknown fields in them too.)
    Trim {},
    Case {
        to: Case,
    },
    /// Every occurrence of a literal text.
    Replace {
        from: String,
        to: String,
    },
    /// The capture group `group` (default 1; 0 is the whole match) of the first match; empty
    /// when the pattern does not match.
    RegexExtract {
        pattern: String,
        #[serde(default = "first_group")]
        group: usize,
    },
    /// Parts at each separator (trimmed, empty ones dropped): a list of images, the levels of
    /// a category; a single-valued field takes the first.
    Split {
        separator: String,
    },
    /// The non-empty parts (a rule's several columns) joined into one.
    Concat {
        #[serde(default = "space")]
        separator: String,
    },
    /// The value when there is none (the cells are empty, or the rule has no source).
    Default {
        value: String,
    },
    /// `1.234,56` → `1234.56`: a comma decimal mark, dots (or spaces) between thousands.
    DecimalComma {},
    /// The number times `by` (a decimal string: `"1.2"`).
    Multiply {
        by: String,
    },
    /// The number plus `percent` percent (`"35"`: ×1.35; `"-10"`: ×0.9).
    Markup {
        percent: String,
    },
    /// The number rounded to `places` decimals (0 to 4), half away from zero.
    Round {
        places: u32,
    },
    /// `Maison/Cuisine` → `Maison > Cuisine`: levels split at `from` (trimmed, empty ones
    /// dropped) and joined with `to` (default ` > `).
    CategorySeparator {
        from: String,
        #[serde(default = "level_separator")]
        to: String,
    },
}

fn first_group() -> usize {
    1
}

fn space() -> String {
    " ".into()
}

fn level_separator() -> String {
    " > ".into()
}

/// A transform ready to run: parameters parsed, regex compiled.
#[derive(Debug, Clone)]
enum Op {
    Trim,
    Case(Case),
    Replace(String, String),
    RegexExtract(Regex, usize),
    Split(String),
    Concat(String),
    Default(String),
    DecimalComma,
    Multiply(Decimal),
    /// The factor (1 + percent / 100).
    Markup(Decimal),
    Round(u32),
    CategorySeparator(String, String),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Trim => "trim",
            Op::Case(_) => "case",
            Op::Replace(..) => "replace",
            Op::RegexExtract(..) => "regex_extract",
            Op::Split(_) => "split",
            Op::Concat(_) => "concat",
            Op::Default(_) => "default",
            Op::DecimalComma => "decimal_comma",
            Op::Multiply(_) => "multiply",
            Op::Markup(_) => "markup",
            Op::Round(_) => "round",
            Op::CategorySeparator(..) => "category_separator",
        }
    }
}

/// A rule checked and compiled, before its columns are found.
#[derive(Debug, Clone)]
struct Compiled {
    target: RuleTarget,
    sources: Vec<String>,
    ops: Vec<Op>,
}

/// A template matched to a file's header: what [`crate::rows`] applies to every row.
#[derive(Debug, Clone)]
pub struct ResolvedTemplate {
    rules: Vec<Resolved>,
}

#[derive(Debug, Clone)]
struct Resolved {
    target: RuleTarget,
    /// Column indexes, in the rule's order.
    sources: Vec<usize>,
    ops: Vec<Op>,
}

/// Why a transform refused a row's value.
#[derive(Debug)]
pub(crate) struct TransformError {
    pub(crate) column: Option<usize>,
    pub(crate) value: String,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Template {
    /// Parses a template's JSON and [checks](Template::check) it.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let t: Template = serde_json::from_str(json).map_err(|e| format!("not a mapping template: {e}"))?;
        t.check()?;
        Ok(t)
    }

    /// Checks the template on its own, before any file: every parameter is valid (regexes
    /// compile within [`REGEX_SIZE_LIMIT`], numbers are decimals, separators are not empty),
    /// every rule has a source or a default, and the required fields are mapped (a `title`,
    /// and an `ean` or a `sku`). The message names the rule (1-based) and the transform.
    pub fn check(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }

    /// Finds every source column in `headers` (by the normalised key a named mapping uses:
    /// [`crate::mapping::key`]) and compiles the transforms, once for the file.
    pub fn resolve(&self, headers: &[String]) -> Result<ResolvedTemplate, FileError> {
        let compiled = self.compile().map_err(FileError::BadTemplate)?;
        let keys: Vec<String> = headers.iter().map(|h| key(h)).collect();
        let rules = compiled
            .into_iter()
            .map(|c| {
                let sources = c
                    .sources
                    .iter()
                    .map(|name| {
                        let k = key(name);
                        keys.iter()
                            .position(|h| *h == k)
                            .ok_or_else(|| FileError::UnknownColumn {
                                name: name.clone(),
                                headers: headers.to_vec(),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Resolved {
                    target: c.target,
                    sources,
                    ops: c.ops,
                })
            })
            .collect::<Result<Vec<_>, FileError>>()?;
        Ok(ResolvedTemplate { rules })
    }

    /// The delimiter as a byte (`None`: detect).
    pub fn delimiter_byte(&self) -> Result<Option<u8>, String> {
        match self.delimiter.as_deref() {
            None => Ok(None),
            Some(";") => Ok(Some(b';')),
            Some(",") => Ok(Some(b',')),
            Some("|") => Ok(Some(b'|')),
            Some("tab" | "\t") => Ok(Some(b'\t')),
            Some(d) => Err(format!(
                "delimiter {d:?} is not one of \";\", \",\", \"|\", \"tab\""
            )),
        }
    }

    /// The sheet to read, if the template names one.
    pub fn sheet_ref(&self) -> Option<SheetRef> {
        self.sheet.as_ref().map(|s| match s {
            TemplateSheet::Index(i) => SheetRef::Index(*i),
            TemplateSheet::Name(n) => SheetRef::Name(n.clone()),
        })
    }

    fn compile(&self) -> Result<Vec<Compiled>, String> {
        if self.columns.is_empty() {
            return Err("the template maps no column".into());
        }
        if self.columns.len() > MAX_RULES {
            return Err(format!(
                "the template has {} rules; at most {MAX_RULES} are allowed",
                self.columns.len()
            ));
        }
        let mut rules = Vec::with_capacity(self.columns.len());
        for (n, rule) in self.columns.iter().enumerate() {
            let names: &[String] = rule.source.as_ref().map_or(&[], Source::names);
            let at = |m: String| {
                let from = if names.is_empty() {
                    "no source".to_owned()
                } else {
                    format!("{names:?}")
                };
                format!("rule {} ({from} → {}): {m}", n + 1, rule.target)
            };
            if matches!(&rule.source, Some(Source::Columns(c)) if c.is_empty()) {
                return Err(at("the list of source columns is empty".into()));
            }
            if names.len() > MAX_SOURCES {
                return Err(at(format!("at most {MAX_SOURCES} source columns")));
            }
            if let Some(bad) = names.iter().find(|c| key(c).is_empty()) {
                return Err(at(format!(
                    "the source column {bad:?} has no letter or digit to find it by"
                )));
            }
            if names.is_empty()
                && !rule
                    .transforms
                    .iter()
                    .any(|t| matches!(t, Transform::Default { .. }))
            {
                return Err(at("a rule without a source needs a default transform".into()));
            }
            if let RuleTarget::Attribute(a) = &rule.target {
                text::check_required(a, TextKind::Line, 200)
                    .map_err(|e| at(format!("the attribute's name {e}")))?;
            }
            if rule.transforms.len() > MAX_TRANSFORMS {
                return Err(at(format!("at most {MAX_TRANSFORMS} transforms")));
            }
            let ops = rule
                .transforms
                .iter()
                .map(compile_op)
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?;
            rules.push(Compiled {
                target: rule.target.clone(),
                sources: names.to_vec(),
                ops,
            });
        }
        let maps = |t: Target| rules.iter().any(|r| r.target == RuleTarget::Field(t));
        if !maps(Target::Title) {
            return Err("the template maps no title".into());
        }
        if !maps(Target::Ean) && !maps(Target::Sku) {
            return Err("the template maps neither an ean nor a sku: one of them is required".into());
        }
        if let Some(c) = self.currency.filter(|c| !c.is_money()) {
            return Err(format!(
                "currency {c} is not money (a metal, a fund or a test code)"
            ));
        }
        if self.header_line == Some(0) {
            return Err("header_line is 1-based: the first line is 1".into());
        }
        if self.skip_rows > 1000 {
            return Err("skip_rows is at most 1000".into());
        }
        self.delimiter_byte()?;
        if let Some(label) = &self.encoding {
            crate::decode::encoding_for_label(label).map_err(|e| e.to_string())?;
        }
        if let Some(TemplateSheet::Name(n)) = &self.sheet {
            text::check_required(n, TextKind::Line, 200).map_err(|e| format!("the sheet's name {e}"))?;
        }
        Ok(rules)
    }
}

/// Checks a transform's parameters and prepares it.
fn compile_op(t: &Transform) -> Result<Op, String> {
    let param = |op: &str, name: &str, v: &str, empty_ok: bool| -> Result<(), String> {
        if !empty_ok && v.is_empty() {
            return Err(format!("{op}: {name} must not be empty"));
        }
        if v.chars().count() > MAX_PARAM_CHARS {
            return Err(format!(
                "{op}: {name} is longer than {MAX_PARAM_CHARS} characters"
            ));
        }
        text::check(v, TextKind::Multiline, MAX_PARAM_CHARS).map_err(|e| format!("{op}: {name} {e}"))
    };
    Ok(match t {
        Transform::Trim {} => Op::Trim,
        Transform::Case { to } => Op::Case(*to),
        Transform::Replace { from, to } => {
            param("replace", "from", from, false)?;
            param("replace", "to", to, true)?;
            Op::Replace(from.clone(), to.clone())
        }
        Transform::RegexExtract { pattern, group } => {
            if pattern.is_empty() {
                return Err("regex_extract: the pattern must not be empty".into());
            }
            if pattern.chars().count() > MAX_PATTERN_CHARS {
                return Err(format!(
                    "regex_extract: the pattern is longer than {MAX_PATTERN_CHARS} characters"
                ));
            }
            let re = RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let why = e.to_string().lines().map(str::trim).collect::<Vec<_>>().join(" ");
                    format!("regex_extract: the pattern {pattern:?} cannot be used: {why}")
                })?;
            let groups = re.captures_len().saturating_sub(1);
            if *group > groups {
                return Err(format!(
                    "regex_extract: the pattern has {groups} capture group(s); group {group} does not exist"
                ));
            }
            Op::RegexExtract(re, *group)
        }
        Transform::Split { separator } => {
            param("split", "separator", separator, false)?;
            Op::Split(separator.clone())
        }
        Transform::Concat { separator } => {
            param("concat", "separator", separator, true)?;
            Op::Concat(separator.clone())
        }
        Transform::Default { value } => {
            param("default", "value", value, false)?;
            Op::Default(value.clone())
        }
        Transform::DecimalComma {} => Op::DecimalComma,
        Transform::Multiply { by } => {
            let d = decimal_param(by)
                .ok_or_else(|| format!("multiply: by {by:?} is not a decimal number such as \"1.2\""))?;
            if d.is_sign_negative() && !d.is_zero() {
                return Err(format!("multiply: by {by:?} must not be negative"));
            }
            Op::Multiply(d)
        }
        Transform::Markup { percent } => {
            let p = decimal_param(percent).ok_or_else(|| {
                format!("markup: percent {percent:?} is not a decimal number such as \"35\"")
            })?;
            let factor = p
                .checked_div(Decimal::ONE_HUNDRED)
                .and_then(|f| f.checked_add(Decimal::ONE))
                .filter(|f| !f.is_sign_negative() || f.is_zero())
                .ok_or_else(|| format!("markup: percent {percent:?} must be -100 or more"))?;
            Op::Markup(factor)
        }
        Transform::Round { places } => {
            if *places > MAX_ROUND_PLACES {
                return Err(format!(
                    "round: places must be 0 to {MAX_ROUND_PLACES} (amounts keep at most {MAX_ROUND_PLACES} decimals)"
                ));
            }
            Op::Round(*places)
        }
        Transform::CategorySeparator { from, to } => {
            param("category_separator", "from", from, false)?;
            param("category_separator", "to", to, true)?;
            Op::CategorySeparator(from.clone(), to.clone())
        }
    })
}

/// A parameter's decimal: digits, an optional sign and point (`"1.2"`, `"-10"`).
fn decimal_param(s: &str) -> Option<Decimal> {
    let s = s.trim();
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    Decimal::from_str_exact(s.strip_prefix('+').unwrap_or(s)).ok()
}

/// `d` rounded to `places` decimals, half away from zero (`2.345` → `2.35`, `-2.345` →
/// `-2.35`), with exactly `places` decimals. `None` out of range.
fn round_half_away(d: Decimal, places: u32) -> Option<Decimal> {
    // `round_dp` rounds half to even; only an exact half differs.
    let mut r = d.round_dp(places);
    let ulp = Decimal::try_new(1, places).ok()?;
    let half = Decimal::try_new(5, places + 1).ok()?;
    if d.checked_sub(r)?.abs() == half && r.abs() < d.abs() {
        r = if d.is_sign_negative() {
            r.checked_sub(ulp)?
        } else {
            r.checked_add(ulp)?
        };
    }
    r.rescale(places);
    Some(r)
}

/// Each word's first letter upper case, the rest lower case (`stylo À BILLE` → `Stylo À Bille`).
fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = c.is_whitespace() || matches!(c, '-' | '/' | '(' | '"');
    }
    out
}

impl ResolvedTemplate {
    /// A row's values through the rules. `mark`: the file's decimal mark, for numeric
    /// transforms reading a cell.
    pub(crate) fn values(&self, r: &[&str], mark: DecimalMark) -> Result<Values<'static>, TransformError> {
        let mut values = Values::default();
        for rule in &self.rules {
            let column = rule.sources.first().copied();
            let (parts, numeric) = run(rule, r, mark)?;
            let mut filled = parts.into_iter().filter(|p| !p.trim().is_empty());
            match &rule.target {
                RuleTarget::Field(Target::ImageUrl) => {
                    for p in filled {
                        values.fields.push(Value::computed(Target::ImageUrl, column, p));
                    }
                }
                RuleTarget::Field(Target::CategoryPath) => {
                    let levels: Vec<String> = filled.map(|p| p.trim().to_owned()).collect();
                    values
                        .fields
                        .push(Value::computed(Target::CategoryPath, column, levels.join(" > ")));
                }
                RuleTarget::Field(t) => {
                    let v = Value::computed(*t, column, filled.next().unwrap_or_default());
                    values.fields.push(if numeric { v.dot() } else { v });
                }
                RuleTarget::Attribute(name) => {
                    if let Some(p) = filled.next() {
                        values.attributes.push((name.clone(), p, column));
                    }
                }
            }
        }
        Ok(values)
    }
}

/// A rule's transforms on a row: its parts, and whether they are numbers with a decimal
/// point (a numeric transform's results).
fn run(rule: &Resolved, r: &[&str], mark: DecimalMark) -> Result<(Vec<String>, bool), TransformError> {
    let column = rule.sources.first().copied();
    let mut parts: Vec<String> = rule
        .sources
        .iter()
        .map(|i| r.get(*i).copied().unwrap_or_default().to_owned())
        .collect();
    let mut numeric = false;
    for op in &rule.ops {
        let bad = |value: &str, why: String| TransformError {
            column,
            value: value.chars().take(200).collect(),
            code: "bad_number",
            message: format!("{}: {why}", op.name()),
        };
        match op {
            Op::Trim => {
                for p in &mut parts {
                    *p = p.trim().to_owned();
                }
            }
            Op::Case(c) => {
                for p in &mut parts {
                    *p = match c {
                        Case::Lower => p.to_lowercase(),
                        Case::Upper => p.to_uppercase(),
                        Case::Title => title_case(p),
                    };
                }
                numeric = false;
            }
            Op::Replace(from, to) => {
                for p in &mut parts {
                    *p = p.replace(from.as_str(), to);
                }
                numeric = false;
            }
            Op::RegexExtract(re, group) => {
                for p in &mut parts {
                    *p = re
                        .captures(p)
                        .and_then(|c| c.get(*group))
                        .map_or_else(String::new, |m| m.as_str().to_owned());
                }
                numeric = false;
            }
            Op::Split(sep) => {
                parts = parts
                    .iter()
                    .flat_map(|p| p.split(sep.as_str()))
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                numeric = false;
            }
            Op::Concat(sep) => {
                let joined = parts
                    .iter()
                    .map(|p| p.trim())
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(sep);
                parts = vec![joined];
                numeric = false;
            }
            Op::Default(v) => {
                if parts.iter().all(|p| p.trim().is_empty()) {
                    parts = vec![v.clone()];
                    numeric = false;
                }
            }
            Op::CategorySeparator(from, to) => {
                for p in &mut parts {
                    *p = p
                        .split(from.as_str())
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(to);
                }
                numeric = false;
            }
            Op::DecimalComma => {
                for p in parts.iter_mut().filter(|p| !p.trim().is_empty()) {
                    *p = decimal(p, DecimalMark::Comma)
                        .map_err(|_| bad(p, format!("{p:?} is not a number")))?;
                }
                numeric = true;
            }
            Op::Multiply(by) => {
                numbers(&mut parts, numeric, mark, |d| d.checked_mul(*by))
                    .map_err(|(p, why)| bad(&p, why))?;
                numeric = true;
            }
            Op::Markup(factor) => {
                numbers(&mut parts, numeric, mark, |d| d.checked_mul(*factor))
                    .map_err(|(p, why)| bad(&p, why))?;
                numeric = true;
            }
            Op::Round(places) => {
                numbers(&mut parts, numeric, mark, |d| round_half_away(d, *places))
                    .map_err(|(p, why)| bad(&p, why))?;
                numeric = true;
            }
        }
        if let Some(p) = parts.iter().find(|p| p.len() > MAX_CELL_BYTES) {
            return Err(TransformError {
                column,
                value: p.chars().take(200).collect(),
                code: "cell_too_large",
                message: format!("{}: the value grew beyond {MAX_CELL_BYTES} bytes", op.name()),
            });
        }
    }
    Ok((parts, numeric))
}

/// A numeric transform `f` on each non-empty part, read as a number with a decimal point
/// (`numeric`: a previous numeric transform's result) or with the file's `mark`. The error:
/// the part and why.
fn numbers(
    parts: &mut [String],
    numeric: bool,
    mark: DecimalMark,
    f: impl Fn(Decimal) -> Option<Decimal>,
) -> Result<(), (String, String)> {
    for p in parts.iter_mut().filter(|p| !p.trim().is_empty()) {
        let read = if numeric {
            Decimal::from_str_exact(p.trim()).ok()
        } else {
            decimal(p, mark)
                .ok()
                .and_then(|d| Decimal::from_str_exact(&d).ok())
        };
        let Some(d) = read else {
            return Err((p.clone(), format!("{p:?} is not a number")));
        };
        let Some(out) = f(d) else {
            return Err((p.clone(), format!("the result for {p:?} is out of range")));
        };
        *p = out.to_string();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pm_domain::Amount;

    use super::*;
    use crate::rows::{CsvRows, ProductRow, ReadOptions, RowError};
    use crate::sheets::tests::{xlsx, C};
    use crate::sheets::SheetRows;

    const FRENCH: &str = r#"{
        "columns": [
            {"source": "Code EAN", "target": "ean"},
            {"source": "Désignation", "target": "title", "transforms": [{"op": "trim"}, {"op": "case", "to": "title"}]},
            {"source": ["Marque", "Modèle"], "target": "title", "transforms": [{"op": "concat", "separator": " "}]},
            {"source": "Prix HT", "target": "cost_price", "transforms": [{"op": "decimal_comma"}, {"op": "multiply", "by": "1.2"}, {"op": "round", "places": 2}]},
            {"source": "Prix", "target": "retail_price", "transforms": [{"op": "markup", "percent": "35"}]},
            {"source": "Catégorie", "target": "category_path", "transforms": [{"op": "category_separator", "from": "/", "to": " > "}]},
            {"source": "Ref", "target": "sku", "transforms": [{"op": "regex_extract", "pattern": "^([A-Z0-9-]+)", "group": 1}]},
            {"source": "Ref", "target": "supplier_sku", "transforms": [{"op": "split", "separator": " "}, {"op": "case", "to": "upper"}]},
            {"source": "Images", "target": "image_url", "transforms": [{"op": "split", "separator": ";"}]},
            {"source": "Couleur", "target": {"attribute": "color"}, "transforms": [{"op": "case", "to": "lower"}]},
            {"source": "Marque", "target": "brand", "transforms": [{"op": "replace", "from": "Stab.", "to": "Stabilo"}]},
            {"target": "brand", "transforms": [{"op": "default", "value": "Acme"}]}
        ],
        "currency": "EUR",
        "decimal_mark": "comma",
        "header_line": 3,
        "skip_rows": 0,
        "sheet": null,
        "delimiter": ";",
        "encoding": null
    }"#;

    fn collect<R: std::io::Read>(rows: &mut CsvRows<R>) -> (Vec<ProductRow>, Vec<RowError>) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next_row() {
            match r.unwrap() {
                Ok(p) => ok.push(p),
                Err(e) => bad.push(*e),
            }
        }
        (ok, bad)
    }

    fn options(t: Template) -> ReadOptions {
        ReadOptions {
            template: Some(t),
            ..Default::default()
        }
    }

    fn amount(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    #[test]
    fn every_transform_on_a_french_supplier_file() {
        let t = Template::from_json(FRENCH).unwrap();
        let text = "Tarif Dupont;;;;;;;;;\n\
            ;;;;;;;;;\n\
            Code EAN;Désignation;Marque;Modèle;Prix HT;Prix;Catégorie;Ref;Images;Couleur\n\
            4006381333931;  stylo BILLE bleu ;Stab.;Point 88;1.234,50;10,00;Bureau/ Stylos /;AB-12 lot;\"https://x.test/1.jpg; https://x.test/2.jpg\";BLEU\n\
            0887276302195;;Bic;Cristal;2,345;1,5;Bureau;zz-9;;\n\
            4006381333948;;;Solo;;;;;;\n";
        let mut rows = CsvRows::open(text.as_bytes(), options(t)).unwrap();
        assert_eq!(rows.info().header_line, 3);
        let (ok, bad) = collect(&mut rows);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok.len(), 3);
        let p = &ok[0];
        assert_eq!(p.line, 4);
        assert_eq!(p.ean.as_ref().unwrap().as_str(), "4006381333931");
        assert_eq!(p.title, "Stylo Bille Bleu");
        assert_eq!(
            p.prices,
            [
                (Target::RetailPrice, amount("13.5")),
                (Target::CostPrice, amount("1481.40")),
            ]
        );
        assert_eq!(p.currency.unwrap().as_str(), "EUR");
        assert_eq!(p.category_path.as_deref(), Some("Bureau > Stylos"));
        assert_eq!(p.sku.as_deref(), Some("AB-12"));
        assert_eq!(p.supplier_sku.as_deref(), Some("AB-12"));
        assert_eq!(p.images, ["https://x.test/1.jpg", "https://x.test/2.jpg"]);
        assert_eq!(p.attributes, [("color".to_owned(), "bleu".to_owned())]);
        assert_eq!(p.brand.as_deref(), Some("Stabilo"));
        // No title: brand and model joined; a regex that does not match gives no sku (the EAN
        // is the key); 2.345 × 1.2 = 2.814 → 2.81; rounding is half away from zero.
        let p = &ok[1];
        assert_eq!(p.title, "Bic Cristal");
        assert_eq!(p.sku, None);
        assert_eq!(p.supplier_sku.as_deref(), Some("ZZ-9"));
        assert_eq!(p.prices[1], (Target::CostPrice, amount("2.81")));
        assert_eq!(p.prices[0], (Target::RetailPrice, amount("2.025")));
        assert_eq!(p.brand.as_deref(), Some("Bic"));
        assert!(p.attributes.is_empty() && p.images.is_empty());
        // Empty cells: the concat of the one filled column, the default brand.
        let p = &ok[2];
        assert_eq!((p.title.as_str(), p.brand.as_deref()), ("Solo", Some("Acme")));
        assert!(p.prices.is_empty());
    }

    #[test]
    fn a_cell_that_is_not_a_number_is_that_rows_bad_number() {
        let t = Template::from_json(
            r#"{"columns": [
                {"source": "sku", "target": "sku"},
                {"source": "title", "target": "title"},
                {"source": "cost", "target": "cost_price", "transforms": [{"op": "multiply", "by": "1.2"}]}
            ], "currency": "EUR"}"#,
        )
        .unwrap();
        let text = "Export\n\nsku;title;cost\nA;one;10\nB;two;n/a\nC;three;\"1.5\"\n";
        let mut rows = CsvRows::open(text.as_bytes(), options(t)).unwrap();
        let (ok, bad) = collect(&mut rows);
        assert_eq!(ok.len(), 2, "{bad:?}");
        assert_eq!(ok[0].prices, [(Target::CostPrice, amount("12"))]);
        assert_eq!(ok[1].prices, [(Target::CostPrice, amount("1.8"))]);
        let e = &bad[0];
        assert_eq!(
            (e.line, e.code, e.column.as_deref(), e.value.as_deref()),
            (5, "bad_number", Some("cost"), Some("n/a"))
        );
        assert!(e.message.starts_with("multiply:"), "{}", e.message);
        assert_eq!(e.raw, ["B", "two", "n/a"]);
    }

    #[test]
    fn check_refuses_templates_that_cannot_work() {
        let base = |rule: &str| {
            format!(
                r#"{{"columns": [{{"source": "t", "target": "title"}}, {{"source": "s", "target": "sku"}}, {rule}]}}"#
            )
        };
        let refused = |json: &str, why: &str| {
            let e = Template::from_json(json).unwrap_err();
            assert!(e.contains(why), "{json}: {e}");
        };
        let op = |op: &str| {
            base(&format!(
                r#"{{"source": "x", "target": "brand", "transforms": [{op}]}}"#
            ))
        };
        refused(
            &op(r#"{"op": "regex_extract", "pattern": "(unclosed"}"#),
            "cannot be used",
        );
        refused(
            &op(r#"{"op": "regex_extract", "pattern": "a{1000}{1000}"}"#),
            "cannot be used",
        );
        refused(
            &op(r#"{"op": "regex_extract", "pattern": "^a", "group": 1}"#),
            "group 1 does not exist",
        );
        refused(&op(r#"{"op": "multiply", "by": "abc"}"#), "not a decimal number");
        refused(&op(r#"{"op": "multiply", "by": 1.2}"#), "expected a string");
        refused(&op(r#"{"op": "multiply", "by": "-2"}"#), "negative");
        refused(&op(r#"{"op": "markup", "percent": "-150"}"#), "-100 or more");
        refused(&op(r#"{"op": "round", "places": 9}"#), "0 to 4");
        refused(
            &op(r#"{"op": "replace", "from": "", "to": "x"}"#),
            "from must not be empty",
        );
        refused(
            &op(r#"{"op": "split", "separator": ""}"#),
            "separator must not be empty",
        );
        refused(&op(r#"{"op": "case", "to": "camel"}"#), "unknown variant");
        refused(&op(r#"{"op": "shout"}"#), "unknown variant");
        refused(&op(r#"{"op": "trim", "extra": 1}"#), "unknown field");
        refused(&base(r#"{"target": "brand"}"#), "needs a default");
        refused(&base(r#"{"source": [], "target": "brand"}"#), "empty");
        refused(
            &base(r#"{"source": "x", "target": "colour"}"#),
            "unknown variant `colour`",
        );
        refused(
            &base(r#"{"source": "x", "target": {"attribute": ""}}"#),
            "must not be empty",
        );
        refused(
            r#"{"columns": [{"source": "t", "target": "title"}]}"#,
            "neither an ean nor a sku",
        );
        refused(r#"{"columns": [{"source": "e", "target": "ean"}]}"#, "no title");
        refused(r#"{"columns": []}"#, "no column");
        for (extra, why) in [
            (r#""delimiter": "x""#, "delimiter"),
            (r#""encoding": "klingon""#, "klingon"),
            (r#""currency": "XAU""#, "not money"),
            (r#""header_line": 0"#, "1-based"),
            (r#""mapping": {}"#, "unknown field"),
        ] {
            let json = format!(
                r#"{{"columns": [{{"source": "t", "target": "title"}}, {{"source": "s", "target": "sku"}}], {extra}}}"#
            );
            refused(&json, why);
        }
        // The message names the rule.
        let e = Template::from_json(&op(r#"{"op": "multiply", "by": "x"}"#)).unwrap_err();
        assert!(e.starts_with("rule 3 ([\"x\"] → brand): multiply"), "{e}");
        // And a good one round-trips through JSON.
        let t = Template::from_json(FRENCH).unwrap();
        let again = Template::from_json(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(t, again);
    }

    #[test]
    fn resolving_against_a_header_names_the_missing_column() {
        let t = Template::from_json(
            r#"{"columns": [{"source": "Désignation", "target": "title"}, {"source": "REF", "target": "sku"}]}"#,
        )
        .unwrap();
        let headers = vec!["designation".to_owned(), "Ref.".to_owned()];
        assert!(t.resolve(&headers).is_ok());
        let e = t.resolve(&["designation".to_owned()]).err().unwrap();
        assert!(
            matches!(&e, FileError::UnknownColumn { name, .. } if name == "REF"),
            "{e}"
        );
        // Through a file: the template wins over a mapping given too.
        let opts = ReadOptions {
            named_mapping: Some(vec![("nope".into(), Target::Title)]),
            ..options(t)
        };
        let mut rows = CsvRows::open("Désignation;Ref\nLampe;L-1\n".as_bytes(), opts).unwrap();
        let (ok, _) = collect(&mut rows);
        assert_eq!(
            (ok[0].title.as_str(), ok[0].sku.as_deref()),
            ("Lampe", Some("L-1"))
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero_and_exact() {
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        let r = |s: &str, p: u32| round_half_away(d(s), p).unwrap().to_string();
        assert_eq!(r("2.345", 2), "2.35");
        assert_eq!(r("2.355", 2), "2.36");
        assert_eq!(r("-2.345", 2), "-2.35");
        assert_eq!(r("2.344", 2), "2.34");
        assert_eq!(r("15", 2), "15.00");
        assert_eq!(r("0.5", 0), "1");
        assert_eq!(title_case("l'ÉTÉ à PARIS-nord"), "L'été À Paris-Nord");
    }

    #[test]
    fn a_template_on_a_spreadsheet() {
        use C::{N, S};
        let book = xlsx(
            "Tarif",
            &[
                vec![S("Catalogue 2026")],
                vec![S("EAN"), S("Nom"), S("Prix"), S("Stock"), S("Taille")],
                vec![N(4006381333931.0), S("stylo"), N(12.9), N(3.0), S("M")],
                vec![N(887276302195.0), S("câble"), S("x"), N(1.0), S("")],
            ],
        );
        let t = Template::from_json(
            r#"{"columns": [
                {"source": "EAN", "target": "ean"},
                {"source": "Nom", "target": "title", "transforms": [{"op": "case", "to": "upper"}]},
                {"source": "Prix", "target": "retail_price", "transforms": [{"op": "multiply", "by": "2"}]},
                {"source": "Stock", "target": "stock"},
                {"source": "Taille", "target": {"attribute": "size"}}
            ], "currency": "EUR", "header_line": 2, "sheet": "tarif"}"#,
        )
        .unwrap();
        let mut rows = SheetRows::open(book, None, options(t)).unwrap();
        assert_eq!(rows.info().header_line, 2);
        let first = rows.next_row().unwrap().unwrap().unwrap();
        assert_eq!(first.title, "STYLO");
        assert_eq!(first.prices, [(Target::RetailPrice, amount("25.8"))]);
        assert_eq!((first.stock, first.line), (Some(3), 3));
        assert_eq!(first.attributes, [("size".to_owned(), "M".to_owned())]);
        let e = rows.next_row().unwrap().unwrap().unwrap_err();
        assert_eq!(
            (e.line, e.code, e.column.as_deref()),
            (4, "bad_number", Some("Prix"))
        );
        assert!(rows.next_row().is_none());
    }
}
