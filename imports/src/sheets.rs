//! Spreadsheets (XLSX, XLS, XLSB, ODS) to validated product rows, through calamine.
//!
//! A sheet is chosen by name or index (default: the first). The header is the first row, at or
//! after `skip_rows`, that looks like one (as for text files: at least half the usual number of
//! filled cells, mostly not numbers), so title rows above it are passed over. Cells become text
//! before the shared validation ([`crate::rows`]): a number cell that holds a whole number
//! becomes its digits (`887276302195`, never `8.87276302195E11`), so a code column gets its
//! leading zeros back when the GTIN is parsed; other numbers keep their decimals (`12.9`).
//!
//! A reader thread owns the workbook and sends the sheet's rows through a bounded channel
//! ([`ROWS_AHEAD`]); [`SheetRows`] keeps the first rows to find the header, then hands rows on
//! as they come. XLSX, what suppliers send, is streamed cell by cell (calamine's cell reader),
//! so memory holds the workbook's bytes, its shared strings and a few hundred rows, whatever the
//! sheet's length. The other formats cannot be streamed: their sheet is read whole into
//! calamine's range first, bounded by [`MAX_CELLS`]. Every workbook's size is bounded by the
//! upload limit before it gets here, and what its zip would expand to by [`check_zip`].

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use calamine::{open_workbook_auto_from_rs, Data, DataRef, Reader, Sheets};

use crate::dialect::looks_like_header;
use crate::mapping::suggest;
use crate::rows::{plan, FileError, FileInfo, ProductRow, ReadOptions, RowError, RowStream, MAX_COLUMNS};

/// The most cells a sheet read whole (XLS, XLSB, ODS) may have (rows × columns of its used
/// range): 20 million, about 100,000 rows of 200 columns. XLSX is streamed and has no such
/// bound.
pub const MAX_CELLS: u64 = 20_000_000;

/// The most a workbook's parts that are read whole (everything but XLSX's worksheets: the
/// shared strings, styles, an ODS's or XLSB's content) may decompress to, together.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 512 * 1024 * 1024;
/// The most one XLSX worksheet may decompress to. It is streamed, so its size costs time, not
/// memory: 4 GiB is beyond a full sheet of 1,048,576 rows of a few dozen columns.
pub const MAX_STREAMED_PART_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// An XLSX worksheet, which [`SheetRows`] streams (XLSB's `.bin` sheets are read whole).
fn streamed_part(name: &str) -> bool {
    name.starts_with("xl/worksheets/") && name.ends_with(".xml")
}
/// A part this large that compresses more than [`MAX_RATIO`] times is a decompression bomb,
/// not a supplier's price list (real sheets compress 5 to 20 times).
const BOMB_PART_BYTES: u64 = 32 * 1024 * 1024;
const MAX_RATIO: u64 = 100;

/// Rows the reader thread may read ahead of the parser. Bounded so that a slow writer slows
/// the reading instead of filling memory with the sheet; a few hundred rows keep the two
/// threads busy without waiting on each other at every row.
pub const ROWS_AHEAD: usize = 512;

/// Rows kept to find the header (the same reach as for text files' title lines).
const HEAD_ROWS: u64 = 50;

/// An XLSX sheet's last column (XFD): a cell beyond it is not a spreadsheet's.
const SHEET_COLUMNS: u32 = 16_384;

/// Refuses a zip (XLSX, XLSB, ODS) whose parts read whole would decompress to more than
/// [`MAX_UNCOMPRESSED_BYTES`], a streamed worksheet to more than [`MAX_STREAMED_PART_BYTES`],
/// or one part of which is a bomb; reads the directory only.
fn check_zip(bytes: &[u8]) -> Result<(), FileError> {
    check_parts(bytes, MAX_UNCOMPRESSED_BYTES, MAX_STREAMED_PART_BYTES)
}

/// [`check_zip`] with its limits given (the tests' are small).
fn check_parts(bytes: &[u8], max_whole: u64, max_streamed: u64) -> Result<(), FileError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(sheet_error)?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(sheet_error)?;
        let (size, packed) = (part.size(), part.compressed_size().max(1));
        if streamed_part(part.name()) {
            if size > max_streamed {
                return Err(FileError::Parse {
                    line: 0,
                    reason: format!(
                        "the worksheet {:?} would expand to {size} bytes; at most {max_streamed} are read",
                        part.name()
                    ),
                });
            }
        } else {
            total = total.saturating_add(size);
        }
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
    if total > max_whole {
        return Err(FileError::Parse {
            line: 0,
            reason: format!(
                "the workbook's parts read whole would expand to {total} bytes; at most {max_whole} are read"
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

/// One row as the reader thread sends it: its sheet row number (1-based) and its filled cells
/// with their sheet columns (0-based, A = 0).
struct SheetRow {
    line: u64,
    cells: Vec<(u32, String)>,
}

impl SheetRow {
    fn is_blank(&self) -> bool {
        self.cells.iter().all(|(_, c)| c.trim().is_empty())
    }

    fn first_column(&self) -> Option<u32> {
        self.cells
            .iter()
            .filter(|(_, c)| !c.trim().is_empty())
            .map(|(i, _)| *i)
            .min()
    }
}

/// What the reader thread sends: the sheet it opened, then rows, then the end or why it stopped.
enum Msg {
    Opened {
        format: &'static str,
        name: String,
        /// The first column of the sheet's used range as the file declares it (XLSX's
        /// `dimension`) or as it was read (the other formats); `None`: not declared.
        first_column: Option<u32>,
    },
    Row(SheetRow),
    End,
    Failed(FileError),
}

/// The product rows of one sheet.
pub struct SheetRows {
    rx: Receiver<Msg>,
    /// Rows received and not yet handed on: the rows after the header among the first ones.
    ahead: VecDeque<SheetRow>,
    /// The sheet column that is the rows' first cell (the used range's first column).
    offset: u32,
    /// The header's width: every row is given at least this many cells.
    width: usize,
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

/// The reader thread's body: opens the workbook, picks the sheet and sends its rows until the
/// end, an error, or the receiver going away (the job stopped).
fn read_sheet(bytes: Vec<u8>, sheet: Option<SheetRef>, tx: &SyncSender<Msg>) {
    let msg = match send_rows(&bytes, sheet, tx) {
        Ok(()) => Msg::End,
        Err(e) => Msg::Failed(e),
    };
    let _ = tx.send(msg);
}

/// `Ok` also when the receiver has gone: there is no one to tell.
fn send_rows(bytes: &[u8], sheet: Option<SheetRef>, tx: &SyncSender<Msg>) -> Result<(), FileError> {
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
    if let Sheets::Xlsx(x) = &mut wb {
        let mut cells = x.worksheet_cells_reader(&name).map_err(sheet_error)?;
        let declared = cells.dimensions();
        let first_column = (declared != calamine::Dimensions::default()).then_some(declared.start.1);
        let opened = Msg::Opened {
            format,
            name,
            first_column,
        };
        if tx.send(opened).is_err() {
            return Ok(());
        }
        let mut row: Option<SheetRow> = None;
        // The row being gathered when the reading fails is dropped: it may be missing cells.
        let mut sent: u64 = 0;
        let stopped = |row: &Option<SheetRow>, sent: u64, e: calamine::XlsxError| FileError::Parse {
            line: row.as_ref().map_or(sent + 1, |r| r.line),
            reason: format!("not a readable spreadsheet from this row on ({e}); the rows above it were read"),
        };
        while let Some(cell) = cells.next_cell().map_err(|e| stopped(&row, sent, e))? {
            let (r, c) = cell.get_position();
            let text = match cell.get_value() {
                DataRef::Empty => continue,
                DataRef::SharedString(s) => (*s).to_owned(),
                other => cell_text(&Data::from(other.clone())),
            };
            if c >= SHEET_COLUMNS {
                return Err(FileError::TooManyColumns(c as usize + 1));
            }
            let line = u64::from(r) + 1;
            if row.as_ref().is_some_and(|row| row.line != line) {
                if let Some(done) = row.take() {
                    sent = done.line;
                    if tx.send(Msg::Row(done)).is_err() {
                        return Ok(());
                    }
                }
            }
            let current = row.get_or_insert_with(|| SheetRow {
                line,
                cells: Vec::new(),
            });
            // A row's cells are at distinct columns in a well-formed sheet; this bounds a
            // malformed one that repeats them.
            if current.cells.len() >= SHEET_COLUMNS as usize {
                return Err(FileError::TooManyColumns(current.cells.len() + 1));
            }
            current.cells.push((c, text));
        }
        if let Some(done) = row {
            let _ = tx.send(Msg::Row(done));
        }
        return Ok(());
    }
    let range = wb.worksheet_range(&name).map_err(sheet_error)?;
    let (h, w) = range.get_size();
    if (h as u64).saturating_mul(w as u64) > MAX_CELLS {
        return Err(FileError::Parse {
            line: 0,
            reason: format!("sheet {name:?} has {h} rows of {w} columns; at most {MAX_CELLS} cells are read"),
        });
    }
    let (top, left) = range.start().unwrap_or((0, 0));
    let opened = Msg::Opened {
        format,
        name,
        first_column: Some(left),
    };
    if tx.send(opened).is_err() {
        return Ok(());
    }
    for (i, cells) in range.rows().enumerate() {
        let cells: Vec<(u32, String)> = cells
            .iter()
            .enumerate()
            .filter(|(_, d)| !matches!(d, Data::Empty))
            .map(|(c, d)| (left + c as u32, cell_text(d)))
            .collect();
        if cells.is_empty() {
            continue;
        }
        let line = u64::from(top) + i as u64 + 1;
        if tx.send(Msg::Row(SheetRow { line, cells })).is_err() {
            return Ok(());
        }
    }
    Ok(())
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
        let (tx, rx) = sync_channel(ROWS_AHEAD);
        std::thread::Builder::new()
            .name("pm-sheet-reader".into())
            .spawn(move || read_sheet(bytes, sheet, &tx))
            .map_err(|e| FileError::Parse {
                line: 0,
                reason: format!("cannot start the sheet reader: {e}"),
            })?;
        let (format, name, first_column) = match recv(&rx) {
            Msg::Opened {
                format,
                name,
                first_column,
            } => (format, name, first_column),
            Msg::Failed(e) => return Err(e),
            Msg::Row(_) | Msg::End => return Err(sheet_error("the sheet reader sent rows before the sheet")),
        };
        // The first rows: up to `HEAD_ROWS` sheet rows from the first filled one.
        let mut head: Vec<SheetRow> = Vec::new();
        let mut ahead = VecDeque::new();
        let mut ended = true;
        while let Some(r) = next_sheet_row(&rx)? {
            let first = head.first().map_or(r.line, |f| f.line);
            if r.line >= first + HEAD_ROWS {
                ahead.push_back(r);
                ended = false;
                break;
            }
            head.push(r);
        }
        // The used range's first column: declared, or the first filled one among the first
        // rows. A later cell left of it has no header, and is not read (as in a text file).
        let seen = head.iter().filter_map(SheetRow::first_column).min();
        let offset = match (first_column, seen) {
            (Some(d), Some(s)) => d.min(s),
            (d, s) => d.or(s).unwrap_or(0),
        };
        let dense = |r: &SheetRow| dense_row(r.cells.clone(), offset, 0);
        let first_row = head.first().map_or(1, |r| r.line);
        let skipped = first_row + options.skip_rows as u64;
        let head_text: Vec<(u64, Vec<String>)> = head
            .iter()
            .filter(|r| r.line >= skipped && !r.is_blank())
            .map(|r| (r.line, dense(r)))
            .collect();
        // The header: the modal count of filled cells over the first rows, then the first row
        // that looks like a header.
        let mut counts = std::collections::BTreeMap::<usize, u64>::new();
        for (_, r) in &head_text {
            let filled = r.iter().filter(|c| !c.trim().is_empty()).count();
            if filled > 1 {
                *counts.entry(filled).or_default() += 1;
            }
        }
        let fields = counts
            .iter()
            .max_by_key(|(n, c)| (**c, **n))
            .map_or(1, |(n, _)| *n);
        let (header_line, headers, sample): (u64, Vec<String>, Vec<Vec<String>>) = match options.header_line()
        {
            // The template's row, or the first filled row below it.
            Some(n) => {
                let mut rows = head.into_iter().chain(std::mem::take(&mut ahead));
                let header = loop {
                    let r = match rows.next() {
                        Some(r) => r,
                        None if ended => return Err(FileError::NoHeaderAt { line: n }),
                        None => next_sheet_row(&rx)?.ok_or(FileError::NoHeaderAt { line: n })?,
                    };
                    if r.line >= n && !r.is_blank() {
                        break r;
                    }
                };
                ahead = rows.collect();
                let sample = ahead.iter().filter(|r| !r.is_blank()).map(dense).collect();
                (header.line, dense(&header), sample)
            }
            None => {
                let at = head_text
                    .iter()
                    .position(|(_, r)| looks_like_header(r, fields))
                    .ok_or(FileError::NoHeader)?;
                let line = head_text[at].0;
                let headers = head_text[at].1.clone();
                let sample = head_text[at + 1..].iter().map(|(_, r)| r.clone()).collect();
                let mut rest: VecDeque<SheetRow> = head.into_iter().filter(|r| r.line > line).collect();
                rest.extend(std::mem::take(&mut ahead));
                ahead = rest;
                (line, headers, sample)
            }
        };
        let headers: Vec<String> = headers.iter().map(|h| h.trim().to_owned()).collect();
        if headers.len() > MAX_COLUMNS {
            return Err(FileError::TooManyColumns(headers.len()));
        }
        let mut suggestion = suggest(&headers, &sample);
        let (stream, profile) = plan(options, &headers, &mut suggestion)?;
        let info = FileInfo {
            format,
            encoding: None,
            delimiter: None,
            sheet: Some(name),
            header_line,
            headers,
            suggestion,
            profile,
        };
        let width = info.headers.len();
        Ok(Self {
            rx,
            ahead,
            offset,
            width,
            info,
            stream,
            ended,
        })
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// The next row (its sheet row number as `line`): `None` at the end of the sheet;
    /// `Some(Err(FileError))` when the workbook cannot be read on (a part that turns out
    /// corrupt, a row wider than [`MAX_COLUMNS`]), after which the iteration should stop.
    pub fn next_row(&mut self) -> Option<Result<Result<ProductRow, Box<RowError>>, FileError>> {
        loop {
            if let Some(row) = self.stream.pop() {
                return Some(Ok(row));
            }
            let row = match self.ahead.pop_front() {
                Some(r) => r,
                None if self.ended => return None,
                None => match next_sheet_row(&self.rx) {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        self.ended = true;
                        self.stream.finish();
                        continue;
                    }
                    Err(e) => {
                        self.ended = true;
                        return Some(Err(e));
                    }
                },
            };
            if row.is_blank() {
                continue;
            }
            let cells = dense_row(row.cells, self.offset, self.width);
            if cells.len() > MAX_COLUMNS {
                self.ended = true;
                return Some(Err(FileError::TooManyColumns(cells.len())));
            }
            let refs: crate::rows::Cells<'_> = cells.iter().map(String::as_str).collect();
            self.stream.push(row.line, &refs);
        }
    }
}

/// The next message; the reader thread gone without a word (it panicked) is an error too.
fn recv(rx: &Receiver<Msg>) -> Msg {
    rx.recv()
        .unwrap_or_else(|_| Msg::Failed(sheet_error("the sheet reader stopped unexpectedly")))
}

/// The next row after the sheet was opened: `None` at its end, the reader's error as it sent it.
fn next_sheet_row(rx: &Receiver<Msg>) -> Result<Option<SheetRow>, FileError> {
    match recv(rx) {
        Msg::Row(r) => Ok(Some(r)),
        Msg::End => Ok(None),
        Msg::Failed(e) => Err(e),
        Msg::Opened { .. } => Err(sheet_error("the sheet reader opened the sheet twice")),
    }
}

/// A row's cells by position from the used range's first column, at least `width` of them.
fn dense_row(cells: Vec<(u32, String)>, offset: u32, width: usize) -> Vec<String> {
    let last = cells
        .iter()
        .filter(|(c, _)| *c >= offset)
        .map(|(c, _)| (c - offset) as usize + 1)
        .max()
        .unwrap_or(0);
    let mut out = vec![String::new(); last.max(width)];
    for (c, text) in cells {
        if c >= offset {
            out[(c - offset) as usize] = text;
        }
    }
    out
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
        book(
            sheet,
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#
            ),
        )
    }

    /// A minimal XLSX whose one sheet, `sheet`, is the worksheet XML `sheet_xml`.
    pub(crate) fn book(sheet: &str, sheet_xml: &str) -> Vec<u8> {
        let parts = [
            ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_owned()),
            ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned()),
            ("xl/workbook.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>"#)),
            ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_owned()),
            ("xl/worksheets/sheet1.xml", sheet_xml.to_owned()),
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
            match r.unwrap() {
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
    fn a_worksheet_streams_past_the_limit_of_the_parts_read_whole() {
        let mut rows = String::new();
        for i in 1..=200 {
            rows.push_str(&format!(
                r#"<row r="{i}">{}</row>"#,
                cell(&format!("A{i}"), "a cell of text")
            ));
        }
        let book = book("S", &sheet_xml(None, &rows));
        let sheet_len = sheet_xml(None, &rows).len() as u64;
        let others = {
            let mut z = zip::ZipArchive::new(Cursor::new(&book)).unwrap();
            let mut sum = 0;
            for i in 0..z.len() {
                let p = z.by_index_raw(i).unwrap();
                if !streamed_part(p.name()) {
                    sum += p.size();
                }
            }
            sum
        };
        assert!(sheet_len > others, "the sheet is the largest part");
        // The worksheet counts against its own limit only.
        assert!(check_parts(&book, others, sheet_len).is_ok());
        let e = check_parts(&book, others, sheet_len - 1).unwrap_err();
        assert!(
            e.to_string()
                .contains("the worksheet \"xl/worksheets/sheet1.xml\" would expand"),
            "{e}"
        );
        let e = check_parts(&book, others - 1, sheet_len).unwrap_err();
        assert!(e.to_string().contains("parts read whole would expand"), "{e}");
    }

    #[test]
    fn numbers_never_print_in_scientific_notation() {
        assert_eq!(cell_text(&Data::Float(4006381333931.0)), "4006381333931");
        assert_eq!(cell_text(&Data::Float(12.9)), "12.9");
        assert_eq!(cell_text(&Data::Float(1e20)), "100000000000000000000");
        assert_eq!(cell_text(&Data::Int(7)), "7");
        assert_eq!(cell_text(&Data::Empty), "");
    }

    /// Every row of a sheet, as (line, ean or sku, title), the rejects as (line, code), and the
    /// error that stopped the reading, if any.
    #[allow(clippy::type_complexity)]
    fn read_all(
        rows: &mut SheetRows,
    ) -> (
        Vec<(u64, String, String)>,
        Vec<(u64, &'static str)>,
        Option<FileError>,
    ) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        while let Some(r) = rows.next_row() {
            match r {
                Ok(Ok(p)) => ok.push((
                    p.line,
                    p.ean
                        .map_or_else(|| p.sku.clone().unwrap_or_default(), |g| g.as_str().to_owned()),
                    p.title,
                )),
                Ok(Err(e)) => bad.push((e.line, e.code)),
                Err(e) => return (ok, bad, Some(e)),
            }
        }
        (ok, bad, None)
    }

    fn cell(at: &str, text: &str) -> String {
        format!(r#"<c r="{at}" t="inlineStr"><is><t>{text}</t></is></c>"#)
    }

    fn sheet_xml(dimension: Option<&str>, rows: &str) -> String {
        let dimension = dimension.map_or_else(String::new, |d| format!(r#"<dimension ref="{d}"/>"#));
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{dimension}<sheetData>{rows}</sheetData></worksheet>"#
        )
    }

    #[test]
    fn a_long_sheet_streams_every_row_with_its_sheet_row_number() {
        // Far more rows than the reader may hold ahead, blank rows and a gap in the numbering
        // included, and sparse rows (a missing middle cell).
        let mut rows = String::from(r#"<row r="1">"#);
        rows.push_str(&(cell("A1", "sku") + &cell("B1", "title") + &cell("C1", "brand")));
        rows.push_str("</row>");
        let n = ROWS_AHEAD * 5;
        let mut expected = Vec::new();
        for i in 0..n {
            let line = if i < n / 2 { 2 * i + 2 } else { 2 * i + 10_000 };
            rows.push_str(&format!(r#"<row r="{line}">"#));
            rows.push_str(&cell(&format!("A{line}"), &format!("S{i}")));
            if i % 7 != 0 {
                rows.push_str(&cell(&format!("B{line}"), &format!("T{i}")));
            }
            rows.push_str(&cell(&format!("C{line}"), "Acme"));
            rows.push_str("</row>");
            if i % 11 == 0 {
                rows.push_str(&format!(r#"<row r="{}"/>"#, line + 1));
            }
            if i % 7 != 0 {
                expected.push((line as u64, format!("S{i}"), format!("T{i}")));
            }
        }
        let options = ReadOptions {
            named_mapping: Some(vec![("sku".into(), Target::Sku), ("title".into(), Target::Title)]),
            ..Default::default()
        };
        let mut sheet = SheetRows::open(book("Stock", &sheet_xml(None, &rows)), None, options).unwrap();
        assert_eq!(sheet.info().headers, ["sku", "title", "brand"]);
        let (ok, bad, failed) = read_all(&mut sheet);
        assert!(failed.is_none(), "{failed:?}");
        assert_eq!(ok, expected);
        // The rows without a title are refused, each on its own line.
        assert_eq!(bad.len(), n.div_ceil(7));
        assert!(bad.iter().all(|(_, code)| *code == "missing_title"), "{bad:?}");
        assert_eq!(bad[1].0, 16);
    }

    #[test]
    fn a_sheet_right_of_column_a_is_read_from_its_first_column() {
        let rows = [
            format!(r#"<row r="2">{}</row>"#, cell("C2", "Tarif 2026")),
            format!(
                r#"<row r="4">{}{}{}</row>"#,
                cell("C4", "EAN"),
                cell("D4", "Désignation"),
                cell("E4", "Prix")
            ),
            format!(
                r#"<row r="5"><c r="C5"><v>4006381333931</v></c>{}<c r="E5"><v>1.5</v></c></row>"#,
                cell("D5", "Stylo")
            ),
        ]
        .concat();
        let options = || ReadOptions {
            currency: Some(Currency::parse("EUR").unwrap()),
            ..Default::default()
        };
        // Declared by the sheet (every spreadsheet program writes it), or not.
        for dimension in [Some("C2:E5"), None] {
            let mut sheet =
                SheetRows::open(book("Tarif", &sheet_xml(dimension, &rows)), None, options()).unwrap();
            let info = sheet.info().clone();
            assert_eq!(info.header_line, 4);
            assert_eq!(info.headers, ["EAN", "Désignation", "Prix"]);
            assert_eq!(info.suggestion.column_of(Target::Ean), Some(0), "{dimension:?}");
            let (ok, bad, failed) = read_all(&mut sheet);
            assert!(failed.is_none() && bad.is_empty(), "{failed:?} {bad:?}");
            assert_eq!(ok, [(5, "4006381333931".to_owned(), "Stylo".to_owned())]);
        }
        // A dimension that starts further left than the cells: the columns keep their places.
        let mut sheet =
            SheetRows::open(book("Tarif", &sheet_xml(Some("A1:E5"), &rows)), None, options()).unwrap();
        assert_eq!(sheet.info().headers, ["", "", "EAN", "Désignation", "Prix"]);
        let (ok, _, failed) = read_all(&mut sheet);
        assert!(failed.is_none(), "{failed:?}");
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn a_sheet_corrupt_part_way_keeps_the_rows_before_and_says_why_it_stopped() {
        let mut rows = format!(r#"<row r="1">{}{}</row>"#, cell("A1", "sku"), cell("B1", "title"));
        for i in 2..=ROWS_AHEAD + 100 {
            rows.push_str(&format!(
                r#"<row r="{i}">{}{}</row>"#,
                cell(&format!("A{i}"), &format!("S{i}")),
                cell(&format!("B{i}"), "Stylo")
            ));
        }
        // A shared string whose index is not a number.
        rows.push_str(r#"<row r="9999"><c r="A9999" t="s"><v>not-an-index</v></c></row>"#);
        let options = ReadOptions {
            named_mapping: Some(vec![("sku".into(), Target::Sku), ("title".into(), Target::Title)]),
            ..Default::default()
        };
        let mut sheet = SheetRows::open(book("S", &sheet_xml(None, &rows)), None, options).unwrap();
        let (ok, bad, failed) = read_all(&mut sheet);
        // Every row up to the last whole one before the corruption; the one being read when it
        // was found is not handed on (it may be missing cells), and the error names it.
        assert_eq!((ok.len(), bad.len()), (ROWS_AHEAD + 98, 0));
        let e = failed.expect("the corruption stops the reading");
        let last = ROWS_AHEAD as u64 + 100;
        assert!(
            matches!(&e, FileError::Parse { line, reason } if *line == last && reason.contains("not a readable spreadsheet")),
            "{e}"
        );
        assert!(sheet.next_row().is_none(), "nothing after the error");
    }

    #[test]
    fn a_template_header_row_far_below_the_first_rows_is_found() {
        let mut rows = String::new();
        for i in 1..=HEAD_ROWS as usize + 30 {
            rows.push_str(&format!(
                r#"<row r="{i}">{}</row>"#,
                cell(&format!("A{i}"), "notes")
            ));
        }
        let at = HEAD_ROWS as usize + 40;
        rows.push_str(&format!(
            r#"<row r="{at}">{}{}</row>"#,
            cell(&format!("A{at}"), "Ref"),
            cell(&format!("B{at}"), "Nom")
        ));
        let next = at + 1;
        rows.push_str(&format!(
            r#"<row r="{next}">{}{}</row>"#,
            cell(&format!("A{next}"), "R1"),
            cell(&format!("B{next}"), "Stylo")
        ));
        let t = crate::template::Template::from_json(&format!(
            r#"{{"columns": [{{"source": "Ref", "target": "sku"}}, {{"source": "Nom", "target": "title"}}], "header_line": {}}}"#,
            HEAD_ROWS + 31
        ))
        .unwrap();
        let options = ReadOptions {
            template: Some(t),
            ..Default::default()
        };
        let mut sheet = SheetRows::open(book("S", &sheet_xml(None, &rows)), None, options).unwrap();
        assert_eq!(sheet.info().header_line, at as u64);
        let (ok, _, failed) = read_all(&mut sheet);
        assert!(failed.is_none(), "{failed:?}");
        assert_eq!(ok, [(next as u64, "R1".to_owned(), "Stylo".to_owned())]);
    }

    #[test]
    fn an_ods_sheet_is_read_whole_with_the_same_rules() {
        let content = r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Tarif"><table:table-row><table:table-cell office:value-type="string"><text:p>Liste de prix</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell office:value-type="string"><text:p>EAN</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Libellé</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Prix</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell office:value-type="float" office:value="4006381333931"><text:p>4006381333931</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Stylo</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="1.5"><text:p>1,5</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
        let mut out = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut out);
            let stored =
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            z.start_file("mimetype", stored).unwrap();
            z.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
                .unwrap();
            z.start_file("META-INF/manifest.xml", stored).unwrap();
            z.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#).unwrap();
            z.start_file("content.xml", stored).unwrap();
            z.write_all(content.as_bytes()).unwrap();
            z.finish().unwrap();
        }
        let options = ReadOptions {
            currency: Some(Currency::parse("EUR").unwrap()),
            ..Default::default()
        };
        let mut sheet = SheetRows::open(out.into_inner(), None, options).unwrap();
        let info = sheet.info().clone();
        assert_eq!(
            (info.format, info.sheet.as_deref(), info.header_line),
            ("ods", Some("Tarif"), 2)
        );
        let (ok, bad, failed) = read_all(&mut sheet);
        assert!(failed.is_none() && bad.is_empty(), "{failed:?} {bad:?}");
        assert_eq!(ok, [(3, "4006381333931".to_owned(), "Stylo".to_owned())]);
    }
}
