//! Encodings: detect what a file is in, then decode it to UTF-8 as a stream.
//!
//! Detection looks at the first bytes only ([`SNIFF_BYTES`]): a BOM (UTF-8, UTF-16 LE/BE) is
//! certain; bytes that are valid UTF-8 are UTF-8 (a legacy file with accents is almost never
//! valid UTF-8 by accident); anything else goes to `chardetng`, which tells Windows-1252 from
//! the other single-byte encodings by letter statistics. ISO-8859-1 is decoded as Windows-1252,
//! its superset (as every browser does); ISO-8859-15 can be asked for by name, since its one
//! difference that matters (`€` at 0xA4) cannot be told from statistics.
//!
//! A file with NUL bytes and no UTF-16 BOM is binary (an image, a zip, an XLSX with a `.csv`
//! name): refused before any parsing, with that reason.

use std::io::{self, Read};

use encoding_rs::{Decoder, Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// How many leading bytes detection reads.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// Why a file cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is binary, not text (a NUL byte at offset {0}); is it a spreadsheet or an archive with a text extension?")]
    Binary(usize),
    #[error("unknown encoding {0:?}; give a WHATWG label such as utf-8, windows-1252, iso-8859-15")]
    UnknownEncoding(String),
    #[error("reading the file: {0}")]
    Io(#[from] io::Error),
}

/// What detection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    pub encoding: &'static Encoding,
    /// Length of the BOM at the start, skipped by the decoder.
    pub bom_len: usize,
    /// How it was found: a BOM, valid UTF-8, a statistical guess, or the caller's override.
    pub how: How,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Bom,
    ValidUtf8,
    Guessed,
    Given,
}

impl Detected {
    /// The name stored with the file (`UTF-8`, `windows-1252`, `UTF-16LE`).
    pub fn name(&self) -> &'static str {
        self.encoding.name()
    }
}

/// An encoding by its WHATWG label (`latin1`, `iso-8859-15`, `cp1252`, `utf-16le`), for a
/// config that overrides detection.
pub fn encoding_for_label(label: &str) -> Result<&'static Encoding, DecodeError> {
    Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| DecodeError::UnknownEncoding(label.to_owned()))
}

/// Detects the encoding of a file from its first bytes (`sample`: up to [`SNIFF_BYTES`];
/// `complete`: the sample is the whole file, so a multi-byte character cut at its end is an
/// error rather than the sample's edge).
pub fn detect(sample: &[u8], complete: bool) -> Result<Detected, DecodeError> {
    if sample.is_empty() {
        return Err(DecodeError::Empty);
    }
    if let Some((encoding, bom_len)) = Encoding::for_bom(sample) {
        return Ok(Detected {
            encoding,
            bom_len,
            how: How::Bom,
        });
    }
    // UTF-16 without a BOM: every other byte NUL in ASCII-heavy text.
    if let Some(enc) = bomless_utf16(sample) {
        return Ok(Detected {
            encoding: enc,
            bom_len: 0,
            how: How::Guessed,
        });
    }
    if let Some(at) = sample.iter().position(|b| *b == 0) {
        return Err(DecodeError::Binary(at));
    }
    if is_utf8(sample, complete) {
        return Ok(Detected {
            encoding: UTF_8,
            bom_len: 0,
            how: How::ValidUtf8,
        });
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(sample, complete);
    let guess = detector.guess(None, false);
    // Legacy multi-byte guesses (Shift_JIS, GBK...) on a European supplier's file are nearly
    // always wrong; the single-byte Latin encoding is the safe reading.
    let encoding = if guess.is_single_byte() {
        guess
    } else {
        WINDOWS_1252
    };
    Ok(Detected {
        encoding,
        bom_len: 0,
        how: How::Guessed,
    })
}

/// The same detection with the encoding given by the caller; a BOM is still skipped.
pub fn given(sample: &[u8], encoding: &'static Encoding) -> Detected {
    let bom_len = match Encoding::for_bom(sample) {
        Some((bom_enc, len)) if bom_enc == encoding => len,
        _ => 0,
    };
    Detected {
        encoding,
        bom_len,
        how: How::Given,
    }
}

fn bomless_utf16(sample: &[u8]) -> Option<&'static Encoding> {
    let n = sample.len().min(512) & !1;
    if n < 8 {
        return None;
    }
    let (mut even, mut odd) = (0, 0);
    for pair in sample[..n].chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    let half = n / 2;
    if odd * 10 >= half * 9 && even == 0 {
        Some(UTF_16LE)
    } else if even * 10 >= half * 9 && odd == 0 {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Valid UTF-8, allowing a character cut by the end of an incomplete sample.
fn is_utf8(sample: &[u8], complete: bool) -> bool {
    match std::str::from_utf8(sample) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none() && sample.len() - e.valid_up_to() < 4,
    }
}

/// Decodes a byte stream to UTF-8 as it is read, skipping the BOM. Malformed sequences become
/// U+FFFD (counted in [`DecodingReader::replacements`]), never an error: a bad byte in one row
/// must not lose the others, and the row that holds it fails validation with its line.
pub struct DecodingReader<R> {
    inner: R,
    decoder: Decoder,
    /// Raw bytes read from `inner`, not yet decoded.
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    /// Decoded UTF-8 not yet handed out.
    out: String,
    out_pos: usize,
    /// Bytes of the BOM still to skip.
    skip: usize,
    eof: bool,
    replacements: u64,
}

impl<R: Read> DecodingReader<R> {
    /// Reads through `inner` with the detected encoding. `inner` must start at the file's first
    /// byte (the sample detection read is read again).
    pub fn new(inner: R, detected: Detected) -> Self {
        Self {
            inner,
            decoder: detected.encoding.new_decoder_without_bom_handling(),
            raw: vec![0; 64 * 1024],
            raw_start: 0,
            raw_end: 0,
            out: String::with_capacity(128 * 1024),
            out_pos: 0,
            skip: detected.bom_len,
            eof: false,
            replacements: 0,
        }
    }

    /// How many malformed sequences became U+FFFD so far.
    pub fn replacements(&self) -> u64 {
        self.replacements
    }

    /// Fills `out` with at least one decoded byte, or reaches the end.
    fn fill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        while self.out.is_empty() {
            if self.raw_start == self.raw_end && !self.eof {
                let n = self.inner.read(&mut self.raw)?;
                self.raw_start = 0;
                self.raw_end = n;
                if n == 0 {
                    self.eof = true;
                }
                if self.skip > 0 {
                    let k = self.skip.min(n);
                    self.raw_start = k;
                    self.skip -= k;
                }
            }
            let input = &self.raw[self.raw_start..self.raw_end];
            let room = self
                .decoder
                .max_utf8_buffer_length(input.len())
                .unwrap_or(256 * 1024)
                .max(16);
            self.out.reserve(room);
            let (_, read, had_errors) = self.decoder.decode_to_string(input, &mut self.out, self.eof);
            if had_errors {
                self.replacements += self.out.matches('\u{FFFD}').count() as u64;
            }
            self.raw_start += read;
            if self.eof && self.raw_start == self.raw_end {
                break;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_pos == self.out.len() {
            if self.eof && self.raw_start == self.raw_end {
                return Ok(0);
            }
            self.fill()?;
            if self.out.is_empty() {
                return Ok(0);
            }
        }
        let bytes = &self.out.as_bytes()[self.out_pos..];
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], d: Detected) -> String {
        let mut r = DecodingReader::new(bytes, d);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn boms_valid_utf8_and_legacy_latin_are_told_apart() {
        let utf8_bom = b"\xEF\xBB\xBFean;prix\n";
        let d = detect(utf8_bom, true).unwrap();
        assert_eq!((d.name(), d.bom_len, d.how), ("UTF-8", 3, How::Bom));
        assert_eq!(decode_all(utf8_bom, d), "ean;prix\n");

        let plain = "désignation;prix\ncafé;1,50\n".as_bytes();
        let d = detect(plain, true).unwrap();
        assert_eq!((d.name(), d.how), ("UTF-8", How::ValidUtf8));

        // The same text in Windows-1252: é is 0xE9.
        let (cp1252, _, _) = WINDOWS_1252.encode("désignation;prix\ncafé crème;1,50\nthé glacé;2,00\n");
        let d = detect(&cp1252, true).unwrap();
        assert_eq!((d.name(), d.how), ("windows-1252", How::Guessed));
        assert_eq!(
            decode_all(&cp1252, d),
            "désignation;prix\ncafé crème;1,50\nthé glacé;2,00\n"
        );

        // UTF-16 LE with a BOM, as Excel's "Unicode text" saves.
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "ean\tprix\n€\n".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let d = detect(&utf16, true).unwrap();
        assert_eq!((d.name(), d.bom_len), ("UTF-16LE", 2));
        assert_eq!(decode_all(&utf16, d), "ean\tprix\n€\n");
    }

    #[test]
    fn a_utf8_character_cut_by_the_sample_is_still_utf8() {
        let text = "é".repeat(10);
        let cut = &text.as_bytes()[..text.len() - 1];
        assert_eq!(detect(cut, false).unwrap().how, How::ValidUtf8);
        assert_ne!(detect(cut, true).unwrap().how, How::ValidUtf8);
    }

    #[test]
    fn binary_and_empty_files_are_refused_with_a_reason() {
        assert!(matches!(detect(b"", true), Err(DecodeError::Empty)));
        let zip = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00";
        let e = detect(zip, true).unwrap_err();
        assert!(e.to_string().contains("binary"), "{e}");
    }

    #[test]
    fn an_override_by_label_wins_and_streams_in_small_reads() {
        let enc = encoding_for_label("ISO-8859-15").unwrap();
        assert_eq!(enc.name(), "ISO-8859-15");
        let d = given(b"\xA4 5", enc);
        assert_eq!(decode_all(b"\xA4 5", d), "€ 5");
        assert!(encoding_for_label("klingon").is_err());
        // One byte at a time through a reader that hands out one byte per read.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let bytes = "\u{FEFF}prix;café\n".as_bytes();
        let d = detect(bytes, true).unwrap();
        let mut r = DecodingReader::new(Trickle(bytes), d);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "prix;café\n");
        // Malformed bytes become U+FFFD and are counted.
        let d = Detected {
            encoding: UTF_8,
            bom_len: 0,
            how: How::Given,
        };
        let mut r = DecodingReader::new(&b"a\xFFb"[..], d);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((s.as_str(), r.replacements()), ("a\u{FFFD}b", 1));
    }
}
