//! CSV dialects: which delimiter, and which line is the header.
//!
//! Suppliers' exports put title lines above the header ("Tarif 2026", "Export du 12/03"),
//! use `;` where the decimal separator is a comma, tabs from "text" exports, `|` from old ERPs.
//! [`sniff`] reads a decoded sample and picks the delimiter among `,` `;` tab `|` under which the
//! most of the sample's records have the same field count (then the one with more fields) (quotes respected, so a quoted
//! `"a;b"` is one field), then the header: the first record, at or after `skip_rows`, with at
//! least half the usual number of non-empty cells, mostly not numbers.

/// Delimiters considered, in order of preference when they tie.
pub const DELIMITERS: [u8; 4] = [b';', b',', b'\t', b'|'];

/// Records of the sample looked at.
const SAMPLE_RECORDS: usize = 50;

/// What [`sniff`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    /// Index (0-based) among the sample's records of the header record.
    pub header_record: usize,
    /// The usual number of fields of a data record.
    pub fields: usize,
}

impl Dialect {
    /// The delimiter as people write it (`;`, `,`, `tab`, `|`).
    pub fn delimiter_name(&self) -> &'static str {
        match self.delimiter {
            b';' => ";",
            b',' => ",",
            b'\t' => "tab",
            b'|' => "|",
            _ => "?",
        }
    }
}

/// Splits `sample` into records of fields with `delim`, honouring RFC 4180 quotes (a quoted
/// field may hold delimiters, `""` and line breaks). Blank lines are skipped. The last record
/// is dropped when the sample does not end with a line break (it may be cut).
fn records(sample: &str, delim: u8, complete: bool) -> Vec<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(false)
        .flexible(true)
        .from_reader(sample.as_bytes());
    let mut out = Vec::new();
    for r in rdr.records().take(SAMPLE_RECORDS + 1) {
        let Ok(r) = r else { break };
        if r.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        out.push(r.iter().map(str::to_owned).collect());
    }
    if !complete && !sample.ends_with('\n') && !out.is_empty() {
        out.pop();
    }
    out.truncate(SAMPLE_RECORDS);
    out
}

/// Picks the delimiter and the header of a decoded sample (`complete`: the sample is the
/// whole file). `skip_rows`: records to pass over before looking for the header. `None` for a
/// sample without a single record.
pub fn sniff(sample: &str, skip_rows: usize, complete: bool) -> Option<Dialect> {
    let mut best: Option<(u64, Dialect)> = None;
    for delim in DELIMITERS {
        let recs = records(sample, delim, complete);
        let recs: Vec<&Vec<String>> = recs.iter().skip(skip_rows).collect();
        if recs.is_empty() {
            continue;
        }
        // The modal field count among records with more than one field.
        let mut counts = std::collections::BTreeMap::<usize, u64>::new();
        for r in &recs {
            if r.len() > 1 {
                *counts.entry(r.len()).or_default() += 1;
            }
        }
        let Some((&fields, &agree)) = counts.iter().max_by_key(|(n, c)| (**c, **n)) else {
            continue;
        };
        let header = recs
            .iter()
            .position(|r| looks_like_header(r, fields))
            .unwrap_or(0);
        // The most records that agree with the mode win; among equals, the one that splits
        // them into more fields. (Weighting agreement by fields let a `;` file with decimal
        // commas and commas in its descriptions read as `,`: every data row split the same
        // way, into more fields, while its header did not.)
        let score = (agree << 16) | (fields.min(0xFFFF) as u64);
        let d = Dialect {
            delimiter: delim,
            header_record: header + skip_rows,
            fields,
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, d));
        }
    }
    match best {
        Some((_, d)) => Some(d),
        // One column only: any delimiter reads it; the first record is the header.
        None => (!records(sample, b';', complete).is_empty()).then_some(Dialect {
            delimiter: b';',
            header_record: skip_rows,
            fields: 1,
        }),
    }
}

/// A header has at least half the usual number of non-empty cells, and most of them are not
/// numbers (a title line has one cell; a data line has prices and codes).
pub(crate) fn looks_like_header(r: &[String], fields: usize) -> bool {
    let filled: Vec<&str> = r.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).collect();
    if filled.len() * 2 < fields.max(2) {
        return false;
    }
    let numeric = filled
        .iter()
        .filter(|c| {
            c.chars()
                .all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | ',' | '-' | ' ' | '+' | 'E' | 'e'))
        })
        .count();
    numeric * 2 < filled.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_whose_rows_hold_more_commas_than_semicolons() {
        // Every data row has the same number of commas (a decimal comma, commas in the
        // description), and more of them than semicolons; the header has none.
        let mut s = String::from("ean;sku;title;description;price;stock\n");
        for i in 0..20 {
            s.push_str(&format!(
                "40063813339{i:02};S{i};Stylo {i};Bleu, fin, rechargeable, 0,5 mm;1,50;{i}\n"
            ));
        }
        let d = sniff(&s, 0, true).unwrap();
        assert_eq!(
            (d.delimiter_name(), d.header_record, d.fields),
            (";", 0, 6),
            "{d:?}"
        );
    }

    #[test]
    fn semicolons_with_decimal_commas_and_title_lines() {
        let s = "Tarif fournisseur 2026\n\nEAN;Désignation;Prix HT;Stock\n4006381333931;Stylo \"bleu\";1,50;12\n0887276302195;Câble; USB;2,99;0\n4011200296908;Cahier;3,10;5\n";
        let d = sniff(s, 0, true).unwrap();
        assert_eq!(
            (d.delimiter_name(), d.header_record, d.fields),
            (";", 1, 4),
            "{d:?}"
        );
    }

    #[test]
    fn quoted_delimiters_and_newlines_do_not_split_fields() {
        let s = "ean,title,description,price\n4006381333931,\"Pen, blue\",\"two\nlines\",1.50\n0887276302195,Cable,\"a \"\"quoted\"\" word\",2.99\n";
        let d = sniff(s, 0, true).unwrap();
        assert_eq!((d.delimiter_name(), d.header_record, d.fields), (",", 0, 4));
    }

    #[test]
    fn tabs_pipes_skipped_rows_and_a_single_column() {
        let tsv = "sku\tqty\nA-1\t3\nB-2\t4\n";
        assert_eq!(sniff(tsv, 0, true).unwrap().delimiter_name(), "tab");
        let pipes = "junk line\nref|libelle|prix\n1|a|2\n3|b|4\n";
        let d = sniff(pipes, 1, true).unwrap();
        assert_eq!((d.delimiter_name(), d.header_record), ("|", 1));
        let one = "ean\n4006381333931\n";
        assert_eq!(sniff(one, 0, true).unwrap().fields, 1);
        assert_eq!(sniff("", 0, true), None);
        assert_eq!(sniff("\n\n\n", 0, true), None);
    }

    #[test]
    fn a_cut_last_record_of_a_sample_is_ignored() {
        let s = "a;b;c\n1;2;3\n4;5;6\n7;8";
        assert_eq!(sniff(s, 0, false).unwrap().fields, 3);
    }
}
