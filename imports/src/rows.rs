//! From a text file to validated product rows: decode → sniff → parse → map → validate.
//!
//! [`CsvRows`] streams: it holds one record at a time (plus the 64 KiB sample detection read),
//! so memory stays flat whatever the file's size. Every row comes out as a [`ProductRow`] or a
//! [`RowError`] naming its physical line (1-based, the header counted, a quoted cell's line
//! breaks counted), the column, the value and why; a bad row never stops the others.
//!
//! Every format and every way of mapping meets in `RowCheck`: a row's cells become
//! `Values` (straight from the mapped cells, through a [`Template`]'s transforms, or from a
//! shop export's columns in [`crate::profiles`]), and one validation turns those into a
//! [`ProductRow`] or a [`RowError`], so that a GTIN or a title is checked the same way whatever
//! produced it.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, Read};

use pm_domain::{text, Amount, Currency, Gtin, TextKind};
use serde::Serialize;

use crate::cells::{decimal, gtin_from_text, DecimalMark};
use crate::decode::{self, DecodeError, DecodingReader, Detected, SNIFF_BYTES};
use crate::dialect::{sniff, Dialect};
use crate::mapping::{suggest, Suggestion, Target};
use crate::profiles::{self, Shop};
use crate::template::{ResolvedTemplate, Template};

/// The longest cell kept; a longer one is a row error (a 50 MB cell is not a product title).
pub const MAX_CELL_BYTES: usize = 64 * 1024;
/// The most columns a file may have.
pub const MAX_COLUMNS: usize = 1000;

/// How to read a file; every field has a sensible default (detect everything).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// A WHATWG label (`windows-1252`, `iso-8859-15`) instead of detection.
    pub encoding: Option<String>,
    /// `;` `,` `\t` `|` instead of detection.
    pub delimiter: Option<u8>,
    /// Records to skip before looking for the header.
    pub skip_rows: usize,
    /// The header's line (a text file's physical line, a sheet's row; 1-based) instead of
    /// looking for it; wins over the template's.
    pub header_line: Option<u64>,
    /// The column → field mapping by column index; `None`: see `named_mapping`.
    pub mapping: Option<Vec<(usize, Target)>>,
    /// The mapping by header name (compared without regard to case, accents or punctuation),
    /// as a person or a template gives it; `None` with `mapping` `None`: suggested from the
    /// header and the first rows, and refused ([`FileError::MappingNeeded`]) when the
    /// suggestion is not confident.
    pub named_mapping: Option<Vec<(String, Target)>>,
    /// The currency of prices whose row has none (the supplier's default).
    pub currency: Option<Currency>,
    pub decimal_mark: DecimalMark,
    /// A supplier's mapping template: when set, it takes precedence over `mapping`,
    /// `named_mapping`, the suggestion and shop profiles. Its currency and decimal mark win over
    /// the fields above (they are the supplier's defaults; the template is more precise); its
    /// encoding, delimiter, skip_rows (and sheet) fill only what these options leave unset,
    /// since options are given per upload.
    pub template: Option<Template>,
}

impl ReadOptions {
    /// The options with the template's file settings merged in (see [`ReadOptions::template`]).
    pub(crate) fn merged(mut self) -> Result<Self, FileError> {
        let Some(t) = &self.template else {
            return Ok(self);
        };
        if t.currency.is_some() {
            self.currency = t.currency;
        }
        if t.decimal_mark != DecimalMark::Auto {
            self.decimal_mark = t.decimal_mark;
        }
        if self.encoding.is_none() {
            self.encoding.clone_from(&t.encoding);
        }
        if self.delimiter.is_none() {
            self.delimiter = t.delimiter_byte().map_err(FileError::BadTemplate)?;
        }
        if self.skip_rows == 0 {
            self.skip_rows = t.skip_rows;
        }
        Ok(self)
    }

    /// The header line (physical line or sheet row, 1-based) the options or the template fix,
    /// if any.
    pub(crate) fn header_line(&self) -> Option<u64> {
        self.header_line
            .or_else(|| self.template.as_ref().and_then(|t| t.header_line))
    }
}

/// Why a file cannot be read at all (as opposed to a row that is bad).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the file has no header line (it is empty or holds only blank lines)")]
    NoHeader,
    #[error("the file has {0} columns; at most {MAX_COLUMNS} are read")]
    TooManyColumns(usize),
    #[error("reading line {line}: {reason}")]
    Parse { line: u64, reason: String },
    #[error("a mapping is needed: no confident column for {}; the file's columns are {headers:?}; give one by header name, e.g. {{\"{}\": \"title\"}}", missing.join(", "), headers.first().map(String::as_str).unwrap_or("Name"))]
    MappingNeeded {
        missing: Vec<&'static str>,
        headers: Vec<String>,
    },
    #[error(
        "the mapping names the column {name:?}, which the file does not have; its columns are {headers:?}"
    )]
    UnknownColumn { name: String, headers: Vec<String> },
    #[error("the mapping template cannot be used: {0}")]
    BadTemplate(String),
    #[error("the template's header line {line} is not in the file (it has no header there)")]
    NoHeaderAt { line: u64 },
    #[error("reading the file: {0}")]
    Io(#[from] io::Error),
}

/// What was found about the file, stored with it.
#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    /// `csv` (any delimited text), `xlsx`, `xls`, `xlsb` or `ods`.
    pub format: &'static str,
    /// Text files: the detected (or given) encoding.
    pub encoding: Option<&'static str>,
    /// Text files: the delimiter.
    pub delimiter: Option<&'static str>,
    /// Spreadsheets: the sheet read.
    pub sheet: Option<String>,
    /// Physical line (text) or row number (sheet) of the header, 1-based.
    pub header_line: u64,
    pub headers: Vec<String>,
    pub suggestion: Suggestion,
    /// The shop export recognised from the header (`woocommerce`, `shopify`), read by its
    /// own rules ([`crate::profiles`]) with no mapping needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<&'static str>,
}

/// A row that passed validation, ready to be written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductRow {
    pub line: u64,
    pub ean: Option<Gtin>,
    pub sku: Option<String>,
    pub supplier_sku: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category_path: Option<String>,
    /// `(price type, amount)` in `currency`.
    pub prices: Vec<(Target, Amount)>,
    pub currency: Option<Currency>,
    pub stock: Option<i64>,
    pub images: Vec<String>,
    /// `(name, value)`: a template's attribute targets, a shop export's attributes or options
    /// (`Color` → `Blue`), in the file's order, names unique.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
    /// For a variation: its parent product's SKU (the parent comes first in the output when
    /// the file holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_sku: Option<String>,
}

/// A rejected row: where, what, why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub column: Option<String>,
    pub value: Option<String>,
    /// Stable machine-readable reason: `bad_gtin`, `digits_lost`, `missing_title`,
    /// `missing_key`, `bad_number`, `bad_currency`, `bad_text`, `cell_too_large`,
    /// `unknown_parent` (a shop export's variation whose parent cannot be named).
    pub code: &'static str,
    pub message: String,
    /// The row's cells as they were, for the rejects file.
    pub raw: Vec<String>,
}

/// The levels of a category path (`Clothing > Tshirts`), from the root, trimmed, empty ones
/// dropped: how a row's `category_path` is read wherever it is used.
pub fn category_levels(path: &str) -> impl Iterator<Item = &str> {
    path.split('>').map(str::trim).filter(|l| !l.is_empty())
}

/// A row's cells, on the stack up to 32 of them (a supplier's file rarely has more columns):
/// one allocation less per row.
pub(crate) type Cells<'a> = smallvec::SmallVec<[&'a str; 32]>;

/// The rows of a delimited text file.
pub struct CsvRows<R: Read> {
    reader: csv::Reader<Lines<DecodingReader<Chain<R>>>>,
    /// The record being read, reused: the reader's iterator would copy every record into a
    /// new one (two allocations a row).
    record: csv::StringRecord,
    info: FileInfo,
    stream: RowStream,
    ended: bool,
}

/// Turns a row's cells into a [`ProductRow`] or a [`RowError`]: the validation every format
/// shares (text files here, spreadsheets in [`crate::sheets`]).
#[derive(Debug, Clone)]
pub(crate) struct RowCheck {
    pub(crate) headers: Vec<String>,
    pub(crate) mapping: Vec<(usize, Target)>,
    pub(crate) options: ReadOptions,
    /// When set, values come from its rules instead of `mapping`.
    pub(crate) template: Option<ResolvedTemplate>,
}

/// One row's values by field before validation, wherever they came from.
#[derive(Debug, Default)]
pub(crate) struct Values<'a> {
    /// In priority order: for a single-valued field the first non-empty one is used; every
    /// image one is used.
    pub(crate) fields: Vec<Value<'a>>,
    /// `(name, value, source column)`.
    pub(crate) attributes: Vec<(String, String, Option<usize>)>,
}

/// A field's value and where it came from.
#[derive(Debug)]
pub(crate) struct Value<'a> {
    pub(crate) target: Target,
    pub(crate) column: Option<usize>,
    /// Trimmed.
    pub(crate) text: Cow<'a, str>,
    /// The value is the cell itself: an error shows the cell as it is in the file; otherwise
    /// it shows `text`, what was computed.
    pub(crate) from_cell: bool,
    /// A number with a decimal point and no thousands separator (a transform's result, a shop
    /// export's), read whatever the file's decimal mark.
    pub(crate) dot: bool,
}

impl<'a> Value<'a> {
    /// A value computed from `column` (or from nothing: a default).
    pub(crate) fn computed(target: Target, column: Option<usize>, text: impl Into<Cow<'a, str>>) -> Self {
        let text = text.into();
        Self {
            target,
            column,
            text: match text {
                Cow::Borrowed(t) => Cow::Borrowed(t.trim()),
                Cow::Owned(t) if t.trim().len() == t.len() => Cow::Owned(t),
                Cow::Owned(t) => Cow::Owned(t.trim().to_owned()),
            },
            from_cell: false,
            dot: false,
        }
    }

    /// The same value, as a number with a decimal point.
    pub(crate) fn dot(self) -> Self {
        Self { dot: true, ..self }
    }

    /// What an error about it shows.
    fn shown<'b>(&'b self, r: &'b [&str]) -> Option<&'b str> {
        if self.from_cell {
            self.column.and_then(|i| r.get(i).copied())
        } else {
            Some(&self.text)
        }
    }
}

impl Values<'_> {
    /// The first non-empty value of `t`.
    fn get(&self, t: Target) -> Option<&Value<'_>> {
        self.fields.iter().find(|f| f.target == t && !f.text.is_empty())
    }
}

/// Rows in, product rows and rejects out: [`RowCheck`] one row at a time, or a shop export's
/// reader, which may hold a few rows back (a Shopify product's rows) and give several outputs
/// for one row (a parent before its first variant).
pub(crate) struct RowStream {
    check: RowCheck,
    shop: Option<Shop>,
    out: VecDeque<Result<ProductRow, Box<RowError>>>,
}

impl RowStream {
    pub(crate) fn push(&mut self, line: u64, r: &[&str]) {
        match &mut self.shop {
            Some(shop) => shop.push(&self.check, line, r, &mut self.out),
            None => self.out.push_back(self.check.row(line, r)),
        }
    }

    /// The end of the file: what was held back.
    pub(crate) fn finish(&mut self) {
        if let Some(shop) = &mut self.shop {
            shop.finish(&self.check, &mut self.out);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Result<ProductRow, Box<RowError>>> {
        self.out.pop_front()
    }
}

/// How the rows of a file whose header is `headers` are read: the template, the mapping given,
/// a shop profile, or the suggestion (in that order). Marks the suggestion confident for a
/// recognised shop export. Returns the stream and the profile's name.
pub(crate) fn plan(
    options: ReadOptions,
    headers: &[String],
    suggestion: &mut Suggestion,
) -> Result<(RowStream, Option<&'static str>), FileError> {
    let mut check = RowCheck {
        headers: headers.to_vec(),
        mapping: Vec::new(),
        options,
        template: None,
    };
    let mut shop = None;
    let mut profile = None;
    if let Some(t) = &check.options.template {
        check.template = Some(t.resolve(headers)?);
    } else if let Some(p) = (check.options.mapping.is_none() && check.options.named_mapping.is_none())
        .then(|| profiles::detect(headers))
        .flatten()
    {
        suggestion.confident = true;
        suggestion.missing.clear();
        profile = Some(p.name());
        shop = Some(Shop::new(p, headers));
    } else {
        check.mapping = choose_mapping(&check.options, headers, suggestion)?;
    }
    Ok((
        RowStream {
            check,
            shop,
            out: VecDeque::new(),
        },
        profile,
    ))
}

/// The sample read for detection, then the rest of the file.
type Chain<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

impl<R: Read> CsvRows<R> {
    /// Reads the first [`SNIFF_BYTES`], detects encoding, delimiter and header, suggests a
    /// mapping (unless one is given), and positions the reader on the first data row.
    pub fn open(mut input: R, options: ReadOptions) -> Result<Self, FileError> {
        let options = options.merged()?;
        let mut sample = Vec::with_capacity(SNIFF_BYTES);
        (&mut input).take(SNIFF_BYTES as u64).read_to_end(&mut sample)?;
        let complete = sample.len() < SNIFF_BYTES;
        let detected: Detected = match &options.encoding {
            Some(label) => decode::given(&sample, decode::encoding_for_label(label)?),
            None => decode::detect(&sample, complete)?,
        };
        let text = {
            let mut s = String::new();
            DecodingReader::new(&sample[..], detected).read_to_string(&mut s)?;
            s
        };
        let mut dialect = sniff(&text, options.skip_rows, complete).ok_or(FileError::NoHeader)?;
        if let Some(d) = options.delimiter {
            dialect = Dialect {
                delimiter: d,
                ..dialect
            };
        }
        let reader = Lines::new(
            DecodingReader::new(io::Cursor::new(sample).chain(input), detected),
            dialect.delimiter,
        );
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut record = csv::StringRecord::new();
        // To the header: the same records the sniffer counted (blank ones skipped), or the
        // first record at or after the template's header line.
        let fixed = options.header_line();
        let mut seen = 0;
        let (headers, header_line) = loop {
            if !reader.read_record(&mut record).map_err(parse_error)? {
                return Err(fixed.map_or(FileError::NoHeader, |line| FileError::NoHeaderAt { line }));
            }
            let r = &record;
            if r.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let line = r.position().map_or(0, csv::Position::line);
            let found = match fixed {
                Some(n) => line >= n,
                None => seen == dialect.header_record,
            };
            if found {
                break (r.iter().map(|h| h.trim().to_owned()).collect::<Vec<_>>(), line);
            }
            seen += 1;
        };
        if headers.len() > MAX_COLUMNS {
            return Err(FileError::TooManyColumns(headers.len()));
        }
        // The suggestion looks at the header and the sample's first rows.
        let sample_rows: Vec<Vec<String>> = {
            let mut rdr = csv::ReaderBuilder::new()
                .delimiter(dialect.delimiter)
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            rdr.records()
                .map_while(Result::ok)
                .filter(|r| !r.iter().all(|f| f.trim().is_empty()))
                .skip(dialect.header_record + 1)
                .take(200)
                .map(|r| r.iter().map(str::to_owned).collect())
                .collect()
        };
        let mut suggestion = suggest(&headers, &sample_rows);
        let (stream, profile) = plan(options, &headers, &mut suggestion)?;
        let info = FileInfo {
            format: "csv",
            encoding: Some(detected.name()),
            delimiter: Some(dialect.delimiter_name()),
            sheet: None,
            header_line,
            headers,
            suggestion,
            profile,
        };
        Ok(Self {
            reader,
            record,
            info,
            stream,
            ended: false,
        })
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// The next row: `None` at the end of the file; `Some(Err(FileError))` when the file itself
    /// cannot be read on (an I/O error), after which the iteration should stop.
    pub fn next_row(&mut self) -> Option<Result<Result<ProductRow, Box<RowError>>, FileError>> {
        loop {
            if let Some(row) = self.stream.pop() {
                return Some(Ok(row));
            }
            if self.ended {
                return None;
            }
            match self.reader.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    self.ended = true;
                    self.stream.finish();
                    continue;
                }
                Err(e) => return Some(Err(parse_error(e))),
            }
            let r = &self.record;
            if r.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let line = r.position().map_or(0, csv::Position::line);
            let cells: Cells<'_> = r.iter().collect();
            self.stream.push(line, &cells);
        }
    }
}

impl RowCheck {
    /// A row through the mapping or the template, then validated.
    pub(crate) fn row(&self, line: u64, r: &[&str]) -> Result<ProductRow, Box<RowError>> {
        if let Some(e) = self.too_large(line, r) {
            return Err(e);
        }
        let values = match &self.template {
            Some(t) => t
                .values(r, self.options.decimal_mark)
                .map_err(|e| self.error(line, r, e.column, Some(&e.value), e.code, e.message))?,
            None => self.mapped(r),
        };
        self.validate(line, r, &values)
    }

    /// A rejected row.
    pub(crate) fn error(
        &self,
        line: u64,
        r: &[&str],
        column: Option<usize>,
        value: Option<&str>,
        code: &'static str,
        message: String,
    ) -> Box<RowError> {
        Box::new(RowError {
            line,
            column: column.and_then(|i| self.headers.get(i).cloned()),
            value: value.map(|v| v.chars().take(200).collect()),
            code,
            message,
            raw: r.iter().map(|c| (*c).to_owned()).collect(),
        })
    }

    /// The error for a row with a cell larger than [`MAX_CELL_BYTES`].
    pub(crate) fn too_large(&self, line: u64, r: &[&str]) -> Option<Box<RowError>> {
        let (i, c) = r.iter().enumerate().find(|(_, c)| c.len() > MAX_CELL_BYTES)?;
        Some(self.error(
            line,
            r,
            Some(i),
            Some(c),
            "cell_too_large",
            format!("a cell of more than {MAX_CELL_BYTES} bytes"),
        ))
    }

    /// The mapped cells, as they are (trimmed): the first column mapped to each field.
    fn mapped<'a>(&self, r: &[&'a str]) -> Values<'a> {
        let mut fields: Vec<Value<'a>> = Vec::with_capacity(self.mapping.len());
        for (i, t) in &self.mapping {
            if fields.iter().any(|f| f.target == *t) {
                continue;
            }
            fields.push(Value {
                target: *t,
                column: Some(*i),
                text: Cow::Borrowed(r.get(*i).map_or("", |v| v.trim())),
                from_cell: true,
                dot: false,
            });
        }
        Values {
            fields,
            attributes: Vec::new(),
        }
    }

    /// The validation every row goes through, whatever produced its values.
    pub(crate) fn validate(
        &self,
        line: u64,
        r: &[&str],
        v: &Values<'_>,
    ) -> Result<ProductRow, Box<RowError>> {
        let fail = |f: &Value<'_>, code: &'static str, message: String| {
            self.error(line, r, f.column, f.shown(r), code, message)
        };
        let line_text = |t: Target, max: usize| -> Result<Option<String>, Box<RowError>> {
            match v.get(t) {
                None => Ok(None),
                Some(f) => text::check(&f.text, TextKind::Line, max)
                    .map(|()| Some(f.text.to_string()))
                    .map_err(|e| fail(f, "bad_text", e.to_string())),
            }
        };
        let ean = match v.get(Target::Ean) {
            None => None,
            Some(f) => Some(gtin_from_text(&f.text).map_err(|e| {
                let code = match e {
                    crate::cells::CodeError::DigitsLost { .. } => "digits_lost",
                    _ => "bad_gtin",
                };
                fail(f, code, e.to_string())
            })?),
        };
        let sku = line_text(Target::Sku, 200)?;
        let Some(title) = line_text(Target::Title, 500)? else {
            let f = v.fields.iter().find(|f| f.target == Target::Title);
            return Err(self.error(
                line,
                r,
                f.and_then(|f| f.column),
                f.and_then(|f| f.shown(r)),
                "missing_title",
                "the title is empty".into(),
            ));
        };
        if ean.is_none() && sku.is_none() {
            return Err(self.error(
                line,
                r,
                None,
                None,
                "missing_key",
                "an ean or a sku is required".into(),
            ));
        }
        let description = match v.get(Target::Description) {
            None => None,
            Some(f) => {
                text::check(&f.text, TextKind::Multiline, 100_000)
                    .map_err(|e| fail(f, "bad_text", e.to_string()))?;
                Some(f.text.to_string())
            }
        };
        let currency = match v.get(Target::Currency) {
            None => self.options.currency,
            Some(f) => Some(
                Currency::parse(&f.text)
                    .ok()
                    .filter(Currency::is_money)
                    .ok_or_else(|| {
                        fail(
                            f,
                            "bad_currency",
                            format!("{:?} is not an ISO 4217 currency", f.text),
                        )
                    })?,
            ),
        };
        let mark = |f: &Value<'_>, column: DecimalMark| if f.dot { DecimalMark::Dot } else { column };
        let mut prices = Vec::new();
        for t in [
            Target::RetailPrice,
            Target::CostPrice,
            Target::SalePrice,
            Target::Msrp,
        ] {
            if let Some(f) = v.get(t) {
                let d = decimal(&f.text, mark(f, self.options.decimal_mark))
                    .map_err(|e| fail(f, "bad_number", e.to_string()))?;
                let a = Amount::parse_non_negative(&d).map_err(|e| fail(f, "bad_number", e.to_string()))?;
                prices.push((t, a));
            }
        }
        if !prices.is_empty() && currency.is_none() {
            return Err(self.error(
                line,
                r,
                None,
                None,
                "bad_currency",
                "prices need a currency: map a currency column or set the supplier's".into(),
            ));
        }
        let stock = match v.get(Target::Stock) {
            None => None,
            Some(f) => {
                let d = decimal(&f.text, mark(f, DecimalMark::Auto))
                    .map_err(|e| fail(f, "bad_number", e.to_string()))?;
                let n: i64 = d
                    .parse()
                    .ok()
                    .filter(|n| (0..=1_000_000_000).contains(n))
                    .ok_or_else(|| {
                        fail(
                            f,
                            "bad_number",
                            format!(
                                "{:?} is not a stock quantity (a whole number, 0 to 1,000,000,000)",
                                f.text
                            ),
                        )
                    })?;
                Some(n)
            }
        };
        let mut images: Vec<String> = Vec::new();
        for f in v.fields.iter().filter(|f| f.target == Target::ImageUrl) {
            for u in f.text.split([',', '|', ' ']).map(str::trim) {
                if (u.starts_with("http://") || u.starts_with("https://")) && !images.iter().any(|i| i == u) {
                    images.push(u.to_owned());
                }
            }
        }
        let mut attributes: Vec<(String, String)> = Vec::new();
        for (name, value, column) in &v.attributes {
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || value.is_empty() || attributes.iter().any(|(n, _)| n == name) {
                continue;
            }
            text::check(name, TextKind::Line, 200)
                .and_then(|()| text::check(value, TextKind::Line, 1000))
                .map_err(|e| {
                    self.error(
                        line,
                        r,
                        *column,
                        Some(value),
                        "bad_text",
                        format!("attribute {name:?}: {e}"),
                    )
                })?;
            attributes.push((name.to_owned(), value.to_owned()));
        }
        Ok(ProductRow {
            line,
            ean,
            sku,
            supplier_sku: line_text(Target::SupplierSku, 200)?,
            title,
            description,
            brand: line_text(Target::Brand, 200)?,
            category_path: line_text(Target::CategoryPath, 1000)?,
            prices,
            currency,
            stock,
            images,
            attributes,
            parent_sku: line_text(Target::ParentSku, 200)?,
        })
    }
}

/// Line endings made plain for the CSV reader, so that the line numbers it reports are the
/// file's physical lines: `\r\n` and a lone `\r` (old Mac exports, mixed endings) become `\n`,
/// and a blank line outside quotes becomes a line holding one delimiter (a record of empty
/// cells, skipped like any other), because the reader skips blank lines without counting them.
/// Works on UTF-8, where `"`, `\r` and `\n` never occur inside a multi-byte character.
struct Lines<R> {
    inner: R,
    buf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    delimiter: u8,
    prev_cr: bool,
    at_line_start: bool,
    in_quotes: bool,
}

impl<R: Read> Lines<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        Self {
            inner,
            buf: vec![0; 64 * 1024],
            out: Vec::with_capacity(64 * 1024 + 1024),
            out_pos: 0,
            delimiter,
            prev_cr: false,
            at_line_start: true,
            in_quotes: false,
        }
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() {
            let n = self.inner.read(&mut self.buf)?;
            if n == 0 {
                return Ok(0);
            }
            self.out.clear();
            self.out_pos = 0;
            // Runs of ordinary bytes are copied whole (memchr3 finds the next `\r`, `\n` or
            // `"`): a byte at a time, this loop was the parser's largest cost after the CSV
            // reader itself.
            let chunk = &self.buf[..n];
            let mut i = 0;
            while i < n {
                if self.prev_cr && chunk[i] == b'\n' {
                    self.prev_cr = false;
                    i += 1;
                    continue;
                }
                let run = memchr::memchr3(b'\r', b'\n', b'"', &chunk[i..]).unwrap_or(n - i);
                if run > 0 {
                    self.out.extend_from_slice(&chunk[i..i + run]);
                    self.prev_cr = false;
                    self.at_line_start = false;
                    i += run;
                    continue;
                }
                let b = chunk[i];
                i += 1;
                self.prev_cr = b == b'\r';
                let b = if b == b'\r' { b'\n' } else { b };
                if b == b'\n' && self.at_line_start && !self.in_quotes {
                    self.out.push(self.delimiter);
                }
                if b == b'"' {
                    self.in_quotes = !self.in_quotes;
                }
                self.at_line_start = b == b'\n';
                self.out.push(b);
            }
        }
        let n = (self.out.len() - self.out_pos).min(dst.len());
        dst[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// The mapping to use: the one given by index, else by name (every name must be a column),
/// else the suggestion when it is confident.
pub(crate) fn choose_mapping(
    options: &ReadOptions,
    headers: &[String],
    suggestion: &Suggestion,
) -> Result<Vec<(usize, Target)>, FileError> {
    if let Some(m) = &options.mapping {
        return Ok(m.clone());
    }
    if let Some(named) = &options.named_mapping {
        let keys: Vec<String> = headers.iter().map(|h| crate::mapping::key(h)).collect();
        return named
            .iter()
            .map(|(name, target)| {
                let k = crate::mapping::key(name);
                keys.iter()
                    .position(|h| *h == k)
                    .map(|i| (i, *target))
                    .ok_or_else(|| FileError::UnknownColumn {
                        name: name.clone(),
                        headers: headers.to_vec(),
                    })
            })
            .collect();
    }
    if !suggestion.confident {
        return Err(FileError::MappingNeeded {
            missing: suggestion.missing.clone(),
            headers: headers.to_vec(),
        });
    }
    Ok(suggestion.columns.iter().map(|c| (c.column, c.target)).collect())
}

fn parse_error(e: csv::Error) -> FileError {
    let line = e.position().map_or(0, csv::Position::line);
    match e.into_kind() {
        csv::ErrorKind::Io(io) => FileError::Io(io),
        other => FileError::Parse {
            line,
            reason: format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use encoding_rs::WINDOWS_1252;

    use super::*;

    /// The line normalizer a byte at a time, as it was first written: the reference that the
    /// run-copying one must match.
    fn lines_reference(input: &[u8], delimiter: u8) -> Vec<u8> {
        let (mut out, mut prev_cr, mut at_line_start, mut in_quotes) = (Vec::new(), false, true, false);
        for &b in input {
            if prev_cr && b == b'\n' {
                prev_cr = false;
                continue;
            }
            prev_cr = b == b'\r';
            let b = if b == b'\r' { b'\n' } else { b };
            if b == b'\n' && at_line_start && !in_quotes {
                out.push(delimiter);
            }
            if b == b'"' {
                in_quotes = !in_quotes;
            }
            at_line_start = b == b'\n';
            out.push(b);
        }
        out
    }

    /// Hands out its bytes `step` at a time, so that `\r\n` pairs, quotes and blank lines fall
    /// across the normalizer's reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(dst.len());
            dst[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_line_normalizer_matches_its_byte_at_a_time_reference() {
        // A small linear congruential generator: the same cases at every run.
        let mut seed: u64 = 0x5eed;
        let alphabet = b"ab;,\r\n\"\r\n \xc3\xa9";
        for case in 0..400 {
            let len = (case * 7) % 300;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(seed >> 33) as usize % alphabet.len()]
                })
                .collect();
            for step in [1, 2, 3, 64, 70_000] {
                let mut got = Vec::new();
                Lines::new(Trickle(&input, step), b';')
                    .read_to_end(&mut got)
                    .unwrap();
                assert_eq!(
                    got,
                    lines_reference(&input, b';'),
                    "case {case}, step {step}: {input:?}"
                );
            }
        }
    }

    fn collect<R: Read>(rows: &mut CsvRows<R>) -> (Vec<ProductRow>, Vec<RowError>) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next_row() {
            match r.unwrap() {
                Ok(p) => ok.push(p),
                Err(e) => bad.push(*e),
            }
        }
        (ok, bad)
    }

    #[test]
    fn a_windows_1252_semicolon_file_with_french_headers_and_decimal_commas() {
        let text = "Tarif Fournisseur Dupont 2026\r\n\r\nCode EAN;Désignation;Marque;Prix HT;Quantité\r\n\
                    4006381333931;Stylo à bille bleu;Stabilo;1,50;12\r\n\
                    0887276302195;Câble USB-C 2 m;Anker;12,90;0\r\n\
                    4006381333932;Mauvais EAN;X;1,00;1\r\n\
                    3.65275E+11;Arrondi par Excel;X;1,00;1\r\n\
                    ;Sans code;X;1,00;1\r\n\
                    8.87276302195E11;Câble (notation scientifique exacte);Anker;12,90;3\r\n";
        let (bytes, _, _) = WINDOWS_1252.encode(text);
        let options = ReadOptions {
            currency: Some(Currency::parse("EUR").unwrap()),
            ..Default::default()
        };
        let mut rows = CsvRows::open(&bytes[..], options).unwrap();
        let info = rows.info().clone();
        assert_eq!(
            (info.encoding, info.delimiter, info.header_line),
            (Some("windows-1252"), Some(";"), 3)
        );
        assert!(info.suggestion.confident, "{:?}", info.suggestion);
        let (ok, bad) = collect(&mut rows);
        assert_eq!(ok.len(), 3, "{ok:?}");
        assert_eq!(ok[0].line, 4);
        assert_eq!(ok[0].title, "Stylo à bille bleu");
        assert_eq!(ok[0].ean.unwrap().as_str(), "4006381333931");
        assert_eq!(
            ok[0].prices,
            [(Target::CostPrice, Amount::parse("1.50").unwrap())]
        );
        assert_eq!(ok[0].stock, Some(12));
        assert_eq!(ok[2].ean.unwrap().as_str(), "0887276302195");
        let got: Vec<(u64, &str, Option<&str>)> = bad
            .iter()
            .map(|e| (e.line, e.code, e.column.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (6, "bad_gtin", Some("Code EAN")),
                (7, "digits_lost", Some("Code EAN")),
                (8, "missing_key", None),
            ]
        );
        assert_eq!(bad[0].value.as_deref(), Some("4006381333932"));
        assert_eq!(bad[0].raw[1], "Mauvais EAN");
    }

    #[test]
    fn a_utf8_bom_tsv_with_multiline_quoted_cells_keeps_physical_line_numbers() {
        let text = "\u{FEFF}sku\ttitle\tdescription\tprice\tcurrency\n\
                    A-1\tLamp\t\"two\nlines, \"\"quoted\"\"\"\t10.5\tEUR\n\
                    A-2\t\t\"x\"\t1\tEUR\n\
                    A-3\tDesk\tplain\t1.234,50\tXAU\n\
                    A-4\tChair\tplain\t99\tchf\n";
        let mut rows = CsvRows::open(text.as_bytes(), ReadOptions::default()).unwrap();
        assert_eq!(
            (rows.info().encoding, rows.info().delimiter),
            (Some("UTF-8"), Some("tab"))
        );
        let (ok, bad) = collect(&mut rows);
        assert_eq!(ok.len(), 2, "{ok:?} {bad:?}");
        assert_eq!(ok[0].description.as_deref(), Some("two\nlines, \"quoted\""));
        assert_eq!(ok[0].line, 2);
        assert_eq!(ok[1].line, 6, "the quoted line break counts");
        assert_eq!(ok[1].currency.unwrap().as_str(), "CHF");
        let got: Vec<(u64, &str)> = bad.iter().map(|e| (e.line, e.code)).collect();
        assert_eq!(got, [(4, "missing_title"), (5, "bad_currency")]);
    }

    #[test]
    fn mixed_line_endings_and_blank_lines_keep_line_numbers_exact() {
        let text = "sku;title\r\n\r\nA;one\rB;two\n\n\nC;\"three\r\nlines\"\r\nD;four";
        let mut rows = CsvRows::open(text.as_bytes(), ReadOptions::default()).unwrap();
        let (ok, bad) = collect(&mut rows);
        let lines: Vec<(u64, &str)> = ok.iter().map(|r| (r.line, r.title.as_str())).collect();
        assert_eq!(lines, [(3, "one"), (4, "two"), (9, "four")]);
        // A title may not hold a line break; its row is refused at its first line.
        let refused: Vec<(u64, &str)> = bad.iter().map(|e| (e.line, e.code)).collect();
        assert_eq!(refused, [(7, "bad_text")]);
        assert_eq!(bad[0].value.as_deref(), Some("three\nlines"));
    }

    #[test]
    fn an_unsure_suggestion_asks_for_a_mapping_which_can_be_given_by_header_name() {
        let text = "col_a;col_b\n4006381333931;Stylo\n0887276302195;Câble\n";
        let e = CsvRows::open(text.as_bytes(), ReadOptions::default())
            .err()
            .unwrap();
        assert!(
            matches!(&e, FileError::MappingNeeded { missing, .. } if missing == &["title"]),
            "{e}"
        );
        assert!(e.to_string().contains("col_b"), "{e}");
        let options = ReadOptions {
            named_mapping: Some(vec![
                ("COL A".into(), Target::Ean),
                ("col-b".into(), Target::Title),
            ]),
            ..Default::default()
        };
        let mut rows = CsvRows::open(text.as_bytes(), options).unwrap();
        let (ok, bad) = collect(&mut rows);
        assert_eq!((ok.len(), bad.len(), ok[1].title.as_str()), (2, 0, "Câble"));
        let options = ReadOptions {
            named_mapping: Some(vec![("nope".into(), Target::Title)]),
            ..Default::default()
        };
        let e = CsvRows::open(text.as_bytes(), options).err().unwrap();
        assert!(matches!(e, FileError::UnknownColumn { .. }), "{e}");
    }

    #[test]
    fn files_that_cannot_be_read_say_why() {
        let e = CsvRows::open(&b""[..], ReadOptions::default()).err().unwrap();
        assert!(matches!(e, FileError::Decode(DecodeError::Empty)), "{e}");
        let e = CsvRows::open(&b"PK\x03\x04\x00\x00binary"[..], ReadOptions::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("binary"), "{e}");
        let e = CsvRows::open(&b"\n\n\n"[..], ReadOptions::default())
            .err()
            .unwrap();
        assert!(matches!(e, FileError::NoHeader), "{e}");
        // Header only: no rows, no error.
        let mut rows = CsvRows::open(&b"ean;title\n"[..], ReadOptions::default()).unwrap();
        assert!(rows.next_row().is_none());
        // Too many columns.
        let wide = (0..1500).map(|i| format!("c{i}")).collect::<Vec<_>>().join(";") + "\n";
        let e = CsvRows::open(wide.as_bytes(), ReadOptions::default())
            .err()
            .unwrap();
        assert!(matches!(e, FileError::TooManyColumns(1500)), "{e}");
        // A huge cell is that row's error only.
        let big = format!("sku;title\nA;{}\nB;ok\n", "x".repeat(MAX_CELL_BYTES + 1));
        let mut rows = CsvRows::open(big.as_bytes(), ReadOptions::default()).unwrap();
        let (ok, bad) = collect(&mut rows);
        assert_eq!((ok.len(), bad[0].code), (1, "cell_too_large"));
    }

    #[test]
    fn a_given_mapping_and_encoding_win() {
        let (bytes, _, _) = encoding_rs::ISO_8859_15.encode("a;b\nX-1;Prix en \u{20ac}\n");
        let options = ReadOptions {
            encoding: Some("iso-8859-15".into()),
            mapping: Some(vec![(0, Target::Sku), (1, Target::Title)]),
            ..Default::default()
        };
        let mut rows = CsvRows::open(&bytes[..], options).unwrap();
        let (ok, _) = collect(&mut rows);
        assert_eq!(ok[0].title, "Prix en €");
        assert_eq!(ok[0].sku.as_deref(), Some("X-1"));
    }
}
