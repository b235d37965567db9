//! The format from the magic bytes, and cheap, bounded walks over container structure (JPEG
//! markers, PNG chunks, RIFF chunks, GIF blocks). Every walk checks each length against the
//! bytes that remain, so a lying length ends the walk instead of reading past the input.

use crate::probe::ImageFormat;

/// The format from the first bytes; `None` for anything else (the file name is never consulted).
pub(crate) fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some(ImageFormat::Tiff)
    } else {
        None
    }
}

/// What the JPEG markers before the first scan say.
#[derive(Debug, Default)]
pub(crate) struct JpegMarkers<'a> {
    /// The TIFF data of the first `Exif\0\0` APP1 segment (at most 64 KiB by the format).
    pub exif: Option<&'a [u8]>,
    /// An Adobe APP14 segment is present: CMYK samples are stored inverted.
    pub adobe: bool,
    /// SOF2 (progressive): libjpeg-turbo buffers every coefficient of the image.
    pub progressive: bool,
    /// Components in the frame (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK).
    pub components: u8,
    /// `ICC_PROFILE` APP2 chunks as (sequence number, data); a profile may span several.
    pub icc_chunks: Vec<(u8, &'a [u8])>,
}

impl JpegMarkers<'_> {
    /// The embedded ICC profile, its chunks joined in order; `None` when absent, incomplete or
    /// over `max` bytes.
    pub fn icc_profile(&self, max: usize) -> Option<Vec<u8>> {
        if self.icc_chunks.is_empty() {
            return None;
        }
        let total: usize = self.icc_chunks.iter().map(|(_, d)| d.len()).sum();
        if total > max {
            return None;
        }
        let mut chunks = self.icc_chunks.clone();
        chunks.sort_by_key(|(seq, _)| *seq);
        Some(chunks.into_iter().flat_map(|(_, d)| d.iter().copied()).collect())
    }
}

pub(crate) fn jpeg_markers(bytes: &[u8]) -> JpegMarkers<'_> {
    let mut out = JpegMarkers::default();
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            break;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break; // start of scan / end of image: no more headers
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if len < 2 || i + 2 + len > bytes.len() {
            break;
        }
        let body = &bytes[i + 4..i + 2 + len];
        match marker {
            0xE1 if out.exif.is_none() && body.starts_with(b"Exif\0\0") => out.exif = Some(&body[6..]),
            0xEE if body.starts_with(b"Adobe") => out.adobe = true,
            0xE2 if body.len() > 14 && body.starts_with(b"ICC_PROFILE\0") => {
                out.icc_chunks.push((body[12], &body[14..]))
            }
            0xC0..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => {
                out.progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
                out.components = body.get(5).copied().unwrap_or(0);
            }
            _ => {}
        }
        i += 2 + len;
    }
    out
}

/// A PNG chunk's data by type, with the declared length even when it is too large to return.
pub(crate) enum Block<'a> {
    Found(&'a [u8]),
    TooLarge(u64),
    Absent,
}

/// The `eXIf` chunk of a PNG, if any, refused (not copied) when over `max`.
pub(crate) fn png_exif(bytes: &[u8], max: u64) -> Block<'_> {
    let mut i = 8;
    while i + 8 <= bytes.len() {
        let len = u64::from(u32::from_be_bytes([
            bytes[i],
            bytes[i + 1],
            bytes[i + 2],
            bytes[i + 3],
        ]));
        let kind = &bytes[i + 4..i + 8];
        if kind == b"eXIf" {
            if len > max {
                return Block::TooLarge(len);
            }
            let start = i + 8;
            let end = start.saturating_add(len as usize);
            return match bytes.get(start..end) {
                Some(data) => Block::Found(data),
                None => Block::Absent,
            };
        }
        if kind == b"IEND" {
            break;
        }
        // data + CRC; a length past the end stops the walk.
        let next = (i as u64).saturating_add(12).saturating_add(len);
        if next > bytes.len() as u64 {
            break;
        }
        i = next as usize;
    }
    Block::Absent
}

/// What the RIFF chunks of a WebP file say.
#[derive(Debug, Default)]
pub(crate) struct WebpChunks {
    pub animated: bool,
    pub frames: u32,
    pub exif_range: Option<(usize, usize)>,
    pub exif_too_large: Option<u64>,
}

pub(crate) fn webp_chunks(bytes: &[u8], max_exif: u64) -> WebpChunks {
    let mut out = WebpChunks::default();
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let kind = &bytes[i..i + 4];
        let len = u64::from(u32::from_le_bytes([
            bytes[i + 4],
            bytes[i + 5],
            bytes[i + 6],
            bytes[i + 7],
        ]));
        let start = i + 8;
        match kind {
            b"VP8X" => {
                if let Some(flags) = bytes.get(start) {
                    out.animated = flags & 0x02 != 0;
                }
            }
            b"ANMF" => out.frames += 1,
            b"EXIF" => {
                if len > max_exif {
                    out.exif_too_large = Some(len);
                } else if start as u64 + len <= bytes.len() as u64 {
                    out.exif_range = Some((start, start + len as usize));
                }
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        let next = (start as u64).saturating_add(len).saturating_add(len & 1);
        if next > bytes.len() as u64 {
            break;
        }
        i = next as usize;
    }
    out
}

/// The number of frames of a GIF, by walking its blocks without decoding any (bounded by the
/// input: every step moves forward). `None` when the structure is broken.
pub(crate) fn gif_frames(bytes: &[u8]) -> Option<u32> {
    let flags = *bytes.get(10)?;
    let mut i = 13;
    if flags & 0x80 != 0 {
        i += 3 * (1usize << ((flags & 0x07) + 1));
    }
    let skip_sub_blocks = |mut i: usize| -> Option<usize> {
        loop {
            let n = usize::from(*bytes.get(i)?);
            i += 1;
            if n == 0 {
                return Some(i);
            }
            i += n;
        }
    };
    let mut frames = 0u32;
    loop {
        match *bytes.get(i)? {
            0x21 => i = skip_sub_blocks(i + 2)?,
            0x2C => {
                frames += 1;
                let local = *bytes.get(i + 9)?;
                i += 10;
                if local & 0x80 != 0 {
                    i += 3 * (1usize << ((local & 0x07) + 1));
                }
                i = skip_sub_blocks(i + 1)?; // LZW minimum code size, then the data
            }
            0x3B => return Some(frames),
            _ => return if frames > 0 { Some(frames) } else { None },
        }
    }
}
