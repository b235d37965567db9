//! EXIF: the bounded block of each container, parsed with kamadak-exif into a summary of the
//! camera fields worth showing, the orientation, and whether GPS (or other personal data) is
//! present. Nothing here is ever written into a derivative: thumbnails carry no metadata at all.

use std::collections::BTreeMap;

use exif::{In, Tag};

use crate::probe::ImageFormat;
use crate::sniff;

/// What the EXIF block says, reduced to what the catalog shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExifSummary {
    pub fields: BTreeMap<String, String>,
    pub orientation: u16,
    pub has_gps: bool,
    pub has_personal: bool,
    /// The block was over [`crate::Limits::max_exif_bytes`] and was not parsed.
    pub skipped_bytes: Option<u64>,
}

/// Tags copied into the summary: camera and exposure facts, nothing that identifies a person or a
/// place (GPS, owner name, serial numbers, artist, user comments are left out).
const SUMMARY_TAGS: &[(Tag, &str)] = &[
    (Tag::Make, "make"),
    (Tag::Model, "model"),
    (Tag::LensMake, "lens_make"),
    (Tag::LensModel, "lens_model"),
    (Tag::Orientation, "orientation"),
    (Tag::DateTimeOriginal, "datetime_original"),
    (Tag::DateTime, "datetime"),
    (Tag::ExposureTime, "exposure_time"),
    (Tag::FNumber, "f_number"),
    (Tag::PhotographicSensitivity, "iso"),
    (Tag::FocalLength, "focal_length"),
    (Tag::Flash, "flash"),
    (Tag::Software, "software"),
    (Tag::ColorSpace, "color_space"),
];

/// Tags that identify a person or a device: reported as present, never copied.
const PERSONAL_TAGS: &[Tag] = &[
    Tag::Artist,
    Tag::CameraOwnerName,
    Tag::BodySerialNumber,
    Tag::LensSerialNumber,
    Tag::ImageUniqueID,
    Tag::UserComment,
];

/// The EXIF of `bytes`, or an empty summary (orientation 1) when there is none or it does not
/// parse: a broken EXIF block never fails the image itself.
pub(crate) fn read(bytes: &[u8], format: ImageFormat, max: u64) -> ExifSummary {
    let empty = ExifSummary {
        orientation: 1,
        ..Default::default()
    };
    let tiff: &[u8] = match format {
        ImageFormat::Jpeg => match sniff::jpeg_markers(bytes).exif {
            Some(b) => b,
            None => return empty,
        },
        ImageFormat::Png => match sniff::png_exif(bytes, max) {
            sniff::Block::Found(b) => b,
            sniff::Block::TooLarge(n) => {
                return ExifSummary {
                    skipped_bytes: Some(n),
                    ..empty
                }
            }
            sniff::Block::Absent => return empty,
        },
        ImageFormat::WebP => {
            let chunks = sniff::webp_chunks(bytes, max);
            if let Some(n) = chunks.exif_too_large {
                return ExifSummary {
                    skipped_bytes: Some(n),
                    ..empty
                };
            }
            match chunks.exif_range {
                Some((s, e)) => {
                    let b = &bytes[s..e];
                    b.strip_prefix(b"Exif\0\0").unwrap_or(b)
                }
                None => return empty,
            }
        }
        // A TIFF file is itself the EXIF container; its size is bounded by max_input_bytes and
        // kamadak-exif reads only the directories, never the strips.
        ImageFormat::Tiff => bytes,
        ImageFormat::Gif => return empty,
    };
    if format != ImageFormat::Tiff && tiff.len() as u64 > max {
        return ExifSummary {
            skipped_bytes: Some(tiff.len() as u64),
            ..empty
        };
    }
    match exif::Reader::new().read_raw(tiff.to_vec()) {
        Ok(parsed) => summarise(&parsed),
        Err(_) => empty,
    }
}

fn summarise(parsed: &exif::Exif) -> ExifSummary {
    let mut fields = BTreeMap::new();
    for (tag, name) in SUMMARY_TAGS {
        if let Some(f) = parsed.get_field(*tag, In::PRIMARY) {
            let text = f.display_value().with_unit(parsed).to_string();
            let text = text.trim().trim_matches('"').trim().to_string();
            if !text.is_empty() {
                fields.insert((*name).to_string(), text);
            }
        }
    }
    let orientation = parsed
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1) as u16;
    let has_gps = parsed.fields().any(|f| f.tag.context() == exif::Context::Gps);
    let has_personal = parsed.fields().any(|f| PERSONAL_TAGS.contains(&f.tag));
    ExifSummary {
        fields,
        orientation,
        has_gps,
        has_personal,
        skipped_bytes: None,
    }
}
