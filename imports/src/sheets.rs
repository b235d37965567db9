//! Spreadsheets (XLSX, XLS, XLSB, ODS) to validated product rows, through calamine.
//!
//! A sheet is chosen by name or index (default: the first). The header is the first row, at or
//! after `skip_rows`, that looks like one (as for text files: at least half the usual number of
//! filled cells, mostly not numbers), so title rows above it are passed over. Cells become text
//! before the shared validation ([`crate::rows`]): a number cell that holds a whole number
//! becomes its digits (`887276302195`, never `8.87276302195E11`), so a code column gets its
//! leading zeros back when the GTIN is parsed; other numbers keep their decimals (`12.9`).
//!
//! The workbook is read whole into calamine's range (formats other than XLSX cannot be
//! streamed, and XLSX's streaming reader gives no random access to find the header); the
//! file's size is bounded by the upload limit before it gets here, and the sheet's cell count by
//! [`MAX_CELLS`].

use std::io::Cursor;

use calamine::{open_workbook_auto_from_rs, Data, Range, Reader, Sheets};

use crate::dialect::looks_like_header;
use crate::mapping::suggest;
use crate::rows::{plan, FileError, FileInfo, ProductRow, ReadOptions, RowError, RowStream, MAX_COLUMNS};

/// The most cells a sheet may have (rows × columns of its used range): 20 million, about
/// 100,000 rows of 200 columns.
pub const MAX_CELLS: u64 = 20_000_000;

/// The most a workbook may decompress to, all parts together.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 512 * 1024 * 1024;
/// A part this large that compresses more than [`MAX_RATIO`] times is a decompression bomb,
/// not a supplier's price list (real sheets compress 5 to 20 times).
const BOMB_PART_BYTES: u64 = 32 * 1024 * 1024;
const MAX_RATIO: u64 = 100;

/// Refuses a zip (XLSX, XLSB, ODS) whose parts would decompress to more than
/// [`MAX_UNCOMPRESSED_BYTES`], or one part of which is a bomb; reads the directory only.
fn check_zip(bytes: &[u8]) -> Result<(), FileError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(sheet_error)?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(sheet_error)?;
        let (size, packed) = (part.size(), part.compressed_size().max(1));
        total = total.saturating_add(size);
        if size > BOMB_PART_BYTES && size / packed > MAX_RATIO {
            return Err(FileError::Parse {
                line: 0,
                reason: format!(
                    "the workbook's part {:?} would expand {} times, to {size} bytes: a decompression bomb, refused",
                    part.name(),
                    size / packed
                ),
            });
        }
    }
    if total > MAX_UNCOMPRESSED_BYTES {
        return Err(FileError::Parse {
            line: 0,
            reason: format!(
                "the workbook would expand to {total} bytes; at most {MAX_UNCOMPRESSED_BYTES} are read"
            ),
        });
    }
    Ok(())
}

/// Which sheet to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetRef {
    Name(String),
    /// 0-based.
    Index(usize),
}

/// The product rows of one sheet.
pub struct SheetRows {
    range: Range<Data>,
    /// Index in `range` of the next row to read.
    next: usize,
    /// The sheet's row number (1-based) of the range's first row.
    first_row: u64,
    info: FileInfo,
    stream: RowStream,
    ended: bool,
}

/// Why a spreadsheet cannot be opened (as opposed to a bad row).
fn sheet_error(e: impl std::fmt::Display) -> FileError {
    let msg = e.to_string();
    let lower = msg.to_lowercase();
    let reason = if lower.contains("password") || lower.contains("encrypt") {
        "the workbook is password-protected; save it without a password".to_owned()
    } else {
        format!("not a readable spreadsheet ({msg})")
    };
    FileError::Parse { line: 0, reason }
}

impl SheetRows {
    /// Opens the workbook in `bytes`, picks the sheet, finds the header and suggests a mapping
    /// (unless `options` gives one). Without `sheet`, the template's sheet, if any.
    pub fn open(bytes: Vec<u8>, sheet: Option<SheetRef>, options: ReadOptions) -> Result<Self, FileError> {
        let options = options.merged()?;
        let sheet = sheet.or_else(|| options.template.as_ref().and_then(|t| t.sheet_ref()));
        if !matches!(
            bytes.get(..4),
            Some([0x50, 0x4B, 0x03, 0x04] | [0xD0, 0xCF, 0x11, 0xE0])
        ) {
            return Err(sheet_error(
                "neither a zip (xlsx, xlsb, ods) nor an ole file (xls)",
            ));
        }
        if bytes.starts_with(&[0x50, 0x4B, 0x03, 0x04]) {
            check_zip(&bytes)?;
        }
        let mut wb = open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(sheet_error)?;
        let format = match &wb {
            Sheets::Xlsx(_) => "xlsx",
            Sheets::Xlsb(_) => "xlsb",
            Sheets::Xls(_) => "xls",
            Sheets::Ods(_) => "ods",
        };
        let names = wb.sheet_names();
        let name = match &sheet {
            None => names.first().cloned(),
            Some(SheetRef::Index(i)) => names.get(*i).cloned(),
            Some(SheetRef::Name(n)) => names.iter().find(|s| s.eq_ignore_ascii_case(n.trim())).cloned(),
        }
        .ok_or_else(|| FileError::Parse {
            line: 0,
            reason: format!("no sheet {sheet:?}; the workbook has {names:?}"),
        })?;
        let range = wb.worksheet_range(&name).map_err(sheet_error)?;
        let (h, w) = range.get_size();
        if (h as u64).saturating_mul(w as u64) > MAX_CELLS {
            return Err(FileError::Parse {
                line: 0,
                reason: format!(
                    "sheet {name:?} has {h} rows of {w} columns; at most {MAX_CELLS} cells are read"
                ),
            });
        }
        if w > MAX_COLUMNS {
            return Err(FileError::TooManyColumns(w));
        }
        let first_row = range.start().map_or(1, |(r, _)| u64::from(r) + 1);
        // The header: the modal count of filled cells over the first rows, then the first row
        // that looks like a header.
        let head: Vec<Vec<String>> = range.rows().take(50).map(row_text).collect();
        let mut counts = std::collections::BTreeMap::<usize, u64>::new();
        for r in head.iter().skip(options.skip_rows) {
            let filled = r.iter().filter(|c| !c.trim().is_empty()).count();
            if filled > 1 {
                *counts.entry(filled).or_default() += 1;
            }
        }
        let fields = counts
            .iter()
            .max_by_key(|(n, c)| (**c, **n))
            .map_or(1, |(n, _)| *n);
        let header_index = match options.header_line() {
            // The template's row, at or below the range's first row, blank rows passed over.
            Some(n) => {
                let from = usize::try_from(n.saturating_sub(first_row)).unwrap_or(usize::MAX);
                (from..range.height())
                    .find(|i| {
                        (0..range.width()).any(|c| {
                            range
                                .get((*i, c))
                                .is_some_and(|d| !cell_text(d).trim().is_empty())
                        })
                    })
                    .ok_or(FileError::NoHeaderAt { line: n })?
            }
            None => head
                .iter()
                .enumerate()
                .skip(options.skip_rows)
                .find(|(_, r)| looks_like_header(r, fields))
                .map(|(i, _)| i)
                .ok_or(FileError::NoHeader)?,
        };
        let headers: Vec<String> = (0..range.width())
            .map(|c| {
                range
                    .get((header_index, c))
                    .map_or_else(String::new, |d| cell_text(d).trim().to_owned())
            })
            .collect();
        let sample: Vec<Vec<String>> = head.get(header_index + 1..).unwrap_or_default().to_vec();
        let mut suggestion = suggest(&headers, &sample);
        let (stream, profile) = plan(options, &headers, &mut suggestion)?;
        let info = FileInfo {
            format,
            encoding: None,
            delimiter: None,
            sheet: Some(name),
            header_line: first_row + header_index as u64,
            headers,
            suggestion,
            profile,
        };
        Ok(Self {
            range,
            next: header_index + 1,
            first_row,
            info,
            stream,
            ended: false,
        })
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// The next row (its sheet row number as `line`), or `None` at the end of the sheet.
    pub fn next_row(&mut self) -> Option<Result<ProductRow, Box<RowError>>> {
        let (height, width) = self.range.get_size();
        loop {
            if let Some(row) = self.stream.pop() {
                return Some(row);
            }
            if self.ended {
                return None;
            }
            if self.next >= height {
                self.ended = true;
                self.stream.finish();
                continue;
            }
            // By position, in constant time: calamine's `Rows` has no `nth` of its own, so
            // `rows().nth(i)` would walk from the top for every row (quadratic in the sheet).
            let cells: Vec<String> = (0..width)
                .map(|c| self.range.get((self.next, c)).map_or_else(String::new, cell_text))
                .collect();
            let line = self.first_row + self.next as u64;
            self.next += 1;
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
            self.stream.push(line, &refs);
        }
    }
}

fn row_text(row: &[Data]) -> Vec<String> {
    row.iter().map(cell_text).collect()
}

/// A cell as text: whole numbers as their digits, others as the shortest decimal that
/// round-trips (never in scientific notation), dates as calamine prints them.
pub fn cell_text(c: &Data) -> String {
    match c {
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => format!("{f}"),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => d.to_string(),
        Data::Error(e) => format!("#{e:?}"),
        Data::Empty => String::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use pm_domain::{Amount, Currency};

    use super::*;
    use crate::mapping::Target;

    /// A cell of a test sheet: a number or an inline string.
    pub(crate) enum C<'a> {
        N(f64),
        S(&'a str),
    }

    /// A minimal XLSX (one sheet, inline strings), made here so that the tests need no
    /// spreadsheet writer.
    pub(crate) fn xlsx(sheet: &str, rows: &[Vec<C>]) -> Vec<u8> {
        let mut data = String::new();
        for (r, row) in rows.iter().enumerate() {
            data.push_str(&format!("<row r=\"{}\">", r + 1));
            for (c, cell) in row.iter().enumerate() {
                let col = (b'A' + c as u8) as char;
                let at = format!("{col}{}", r + 1);
                match cell {
                    C::N(v) => data.push_str(&format!("<c r=\"{at}\"><v>{v}</v></c>")),
                    C::S(s) => {
                        data.push_str(&format!("<c r=\"{at}\" t=\"inlineStr\"><is><t>{s}</t></is></c>"))
                    }
                }
            }
            data.push_str("</row>");
        }
        let parts = [
            ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_owned()),
            ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned()),
            ("xl/workbook.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>"#)),
            ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_owned()),
            ("xl/worksheets/sheet1.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#)),
        ];
        let mut out = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut out);
            let opts =
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for (name, body) in parts {
                z.start_file(name, opts).unwrap();
                z.write_all(body.as_bytes()).unwrap();
            }
            z.finish().unwrap();
        }
        out.into_inner()
    }

    #[test]
    fn title_rows_above_the_header_and_eans_stored_as_numbers() {
        use C::{N, S};
        let book = xlsx(
            "Tarif",
            &[
                vec![S("Catalogue Dupont — mars 2026")],
                vec![S("Prix nets, hors taxes")],
                vec![],
                vec![S("EAN"), S("Libellé"), S("Prix"), S("Stock")],
                vec![N(4006381333931.0), S("Stylo"), N(1.5), N(12.0)],
                vec![N(887276302195.0), S("Câble"), N(12.9), N(0.0)],
                vec![N(4006381333932.0), S("Mauvais"), N(1.0), N(1.0)],
                vec![S("0012345678905"), S("Texte"), S("2,50"), N(3.0)],
            ],
        );
        let options = ReadOptions {
            currency: Some(Currency::parse("EUR").unwrap()),
            ..Default::default()
        };
        let mut rows = SheetRows::open(book, None, options).unwrap();
        let info = rows.info().clone();
        assert_eq!(
            (info.format, info.sheet.as_deref(), info.header_line),
            ("xlsx", Some("Tarif"), 4)
        );
        assert!(info.suggestion.confident, "{:?}", info.suggestion);
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next_row() {
            match r {
                Ok(p) => ok.push(p),
                Err(e) => bad.push(*e),
            }
        }
        let got: Vec<(u64, &str)> = ok
            .iter()
            .map(|p| (p.line, p.ean.as_ref().unwrap().as_str()))
            .collect();
        assert_eq!(
            got,
            [(5, "4006381333931"), (6, "0887276302195"), (8, "0012345678905")]
        );
        assert_eq!(
            ok[1].prices,
            [(Target::RetailPrice, Amount::parse("12.9").unwrap())]
        );
        assert_eq!(
            ok[2].prices,
            [(Target::RetailPrice, Amount::parse("2.50").unwrap())]
        );
        assert_eq!((bad.len(), bad[0].line, bad[0].code), (1, 7, "bad_gtin"));
    }

    #[test]
    fn sheets_by_name_or_index_and_unreadable_workbooks_say_why() {
        let book = xlsx(
            "Produits",
            &[vec![C::S("sku"), C::S("title")], vec![C::S("A"), C::S("x")]],
        );
        assert!(SheetRows::open(
            book.clone(),
            Some(SheetRef::Name("produits".into())),
            ReadOptions::default()
        )
        .is_ok());
        assert!(SheetRows::open(book.clone(), Some(SheetRef::Index(0)), ReadOptions::default()).is_ok());
        let e = SheetRows::open(
            book.clone(),
            Some(SheetRef::Name("Other".into())),
            ReadOptions::default(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("Produits"), "{e}");
        // Truncated, and not a spreadsheet at all.
        let e = SheetRows::open(book[..book.len() / 2].to_vec(), None, ReadOptions::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a readable spreadsheet"), "{e}");
        let e = SheetRows::open(b"ean;title\n".to_vec(), None, ReadOptions::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("neither a zip"), "{e}");
    }

    #[test]
    fn a_decompression_bomb_disguised_as_xlsx_is_refused_before_it_is_read() {
        let mut out = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut out);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(false);
            z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
            let zeros = vec![b'0'; 1 << 20];
            for _ in 0..40 {
                z.write_all(&zeros).unwrap();
            }
            z.finish().unwrap();
        }
        let bytes = out.into_inner();
        assert!(bytes.len() < 1 << 20, "the bomb is small: {}", bytes.len());
        let e = SheetRows::open(bytes, None, ReadOptions::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("decompression bomb"), "{e}");
    }

    #[test]
    fn numbers_never_print_in_scientific_notation() {
        assert_eq!(cell_text(&Data::Float(4006381333931.0)), "4006381333931");
        assert_eq!(cell_text(&Data::Float(12.9)), "12.9");
        assert_eq!(cell_text(&Data::Float(1e20)), "100000000000000000000");
        assert_eq!(cell_text(&Data::Int(7)), "7");
        assert_eq!(cell_text(&Data::Empty), "");
    }
}
