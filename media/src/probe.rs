//! [`probe`]: what an image is, from its headers alone. The pixel count is checked against
//! [`Limits::max_pixels`] here, before any decoder allocates for pixels, so a decompression bomb
//! (a tiny PNG declaring 50,000 x 50,000) is refused in microseconds.

use std::collections::BTreeMap;
use std::io::Cursor;

use image::{ExtendedColorType, ImageDecoder};

use crate::{metadata, sniff, Limits, MediaError};

/// The accepted input formats, identified by their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
    Tiff,
}

impl ImageFormat {
    /// Lowercase name, as stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::WebP => "webp",
            Self::Tiff => "tiff",
        }
    }

    /// The media type of the original.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
            Self::Tiff => "image/tiff",
        }
    }

    pub(crate) fn to_image(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Gif => image::ImageFormat::Gif,
            Self::WebP => image::ImageFormat::WebP,
            Self::Tiff => image::ImageFormat::Tiff,
        }
    }
}

/// An original's metadata, from its headers and EXIF block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    /// Stored width and height, before the EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// Width and height as displayed, after the EXIF orientation (swapped for 5-8).
    pub display_width: u32,
    pub display_height: u32,
    /// The stored colour type: `rgb8`, `rgba8`, `luma8`, `lumaa8`, `rgb16`, `rgba16`, `luma16`,
    /// `lumaa16`, `cmyk8`, `rgb32f`, `rgba32f`, or `other`. Palette images (PNG, GIF) report
    /// the type their palette expands to (`rgb8`, `rgba8`).
    pub color_type: &'static str,
    pub has_alpha: bool,
    /// An ICC profile is embedded (thumbnails are converted from it to sRGB).
    pub has_icc_profile: bool,
    /// Size of the original in bytes.
    pub byte_size: u64,
    /// Number of frames where counting is cheap (GIF by block walk, animated WebP by chunk walk).
    pub frames: Option<u32>,
    pub animated: bool,
    /// EXIF orientation, 1-8 (1 when absent or invalid).
    pub orientation: u16,
    /// Camera and exposure fields (`make`, `model`, `lens_model`, `datetime_original`,
    /// `exposure_time`, `f_number`, `iso`, `focal_length`, ...), never GPS or personal fields.
    pub exif: BTreeMap<String, String>,
    /// The EXIF block has GPS fields (reported, never copied).
    pub exif_has_gps: bool,
    /// The EXIF block has personal fields (artist, owner, serial numbers; reported, never copied).
    pub exif_has_personal: bool,
    /// The EXIF block was over [`Limits::max_exif_bytes`]: its size, and it was not parsed.
    pub exif_skipped_bytes: Option<u64>,
}

/// The header facts the decoder needs; cheaper than [`ImageInfo`] (no EXIF).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub color_type: &'static str,
    pub has_alpha: bool,
    pub has_icc_profile: bool,
}

/// What `bytes` is: format from the magic bytes, dimensions, colour type, frames and EXIF, all
/// from the headers. Refuses inputs over [`Limits::max_input_bytes`] and headers declaring more
/// than [`Limits::max_pixels`].
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<ImageInfo, MediaError> {
    let h = header(bytes, limits)?;
    let ex = metadata::read(bytes, h.format, limits.max_exif_bytes);
    let (frames, animated) = match h.format {
        ImageFormat::Gif => {
            let n = sniff::gif_frames(bytes);
            (n, n.is_some_and(|n| n > 1))
        }
        ImageFormat::WebP => {
            let c = sniff::webp_chunks(bytes, limits.max_exif_bytes);
            (Some(c.frames.max(1)), c.animated)
        }
        _ => (Some(1), false),
    };
    let swap = ex.orientation >= 5;
    Ok(ImageInfo {
        format: h.format,
        width: h.width,
        height: h.height,
        display_width: if swap { h.height } else { h.width },
        display_height: if swap { h.width } else { h.height },
        color_type: h.color_type,
        has_alpha: h.has_alpha,
        has_icc_profile: h.has_icc_profile,
        byte_size: bytes.len() as u64,
        frames,
        animated,
        orientation: ex.orientation,
        exif: ex.fields,
        exif_has_gps: ex.has_gps,
        exif_has_personal: ex.has_personal,
        exif_skipped_bytes: ex.skipped_bytes,
    })
}

pub(crate) fn header(bytes: &[u8], limits: &Limits) -> Result<Header, MediaError> {
    limits.check_input(bytes.len())?;
    let format = sniff::sniff(bytes).ok_or(MediaError::UnsupportedFormat)?;
    let h = match format {
        ImageFormat::Jpeg => {
            let h = turbojpeg::read_header(bytes).map_err(jpeg_error)?;
            let color_type = match h.colorspace {
                turbojpeg::Colorspace::Gray => "luma8",
                turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK => "cmyk8",
                _ => "rgb8",
            };
            Header {
                format,
                width: u32::try_from(h.width).unwrap_or(u32::MAX),
                height: u32::try_from(h.height).unwrap_or(u32::MAX),
                color_type,
                has_alpha: false,
                has_icc_profile: !sniff::jpeg_markers(bytes).icc_chunks.is_empty(),
            }
        }
        _ => {
            let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.to_image());
            reader.limits(image_limits(limits));
            let mut decoder = reader.into_decoder().map_err(image_error)?;
            let has_icc_profile = decoder.icc_profile().ok().flatten().is_some();
            let (width, height) = decoder.dimensions();
            let color = decoder.original_color_type();
            Header {
                format,
                width,
                height,
                color_type: color_name(color),
                has_alpha: decoder.color_type().has_alpha(),
                has_icc_profile,
            }
        }
    };
    limits.check_pixels(h.width, h.height)?;
    Ok(h)
}

pub(crate) fn image_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_alloc_bytes);
    l
}

/// TurboJPEG's messages, lowercased and without its prefix, as [`MediaError::Corrupt`].
pub(crate) fn jpeg_error(e: turbojpeg::Error) -> MediaError {
    let msg = e.to_string();
    let msg = msg.trim_start_matches("TurboJPEG error: ");
    MediaError::Corrupt(format!("jpeg: {}", msg.to_lowercase()))
}

/// Maps the `image` crate's errors. Its limit errors carry no numbers; [`crate::decode`] checks
/// its own estimate first, so one seen here is a decoder's internal allocation: kept as text.
pub(crate) fn image_error(e: image::ImageError) -> MediaError {
    match e {
        image::ImageError::Limits(l) => MediaError::Corrupt(format!("over the memory limit: {l}")),
        image::ImageError::Unsupported(u) => MediaError::Corrupt(format!("unsupported feature: {u}")),
        other => MediaError::Corrupt(other.to_string()),
    }
}

fn color_name(c: ExtendedColorType) -> &'static str {
    match c {
        ExtendedColorType::L8 => "luma8",
        ExtendedColorType::La8 => "lumaa8",
        ExtendedColorType::Rgb8 => "rgb8",
        ExtendedColorType::Rgba8 => "rgba8",
        ExtendedColorType::L16 => "luma16",
        ExtendedColorType::La16 => "lumaa16",
        ExtendedColorType::Rgb16 => "rgb16",
        ExtendedColorType::Rgba16 => "rgba16",
        ExtendedColorType::Cmyk8 => "cmyk8",
        ExtendedColorType::Rgb32F => "rgb32f",
        ExtendedColorType::Rgba32F => "rgba32f",
        ExtendedColorType::L1
        | ExtendedColorType::L2
        | ExtendedColorType::L4
        | ExtendedColorType::La1
        | ExtendedColorType::La2
        | ExtendedColorType::La4 => "luma_low_bit",
        ExtendedColorType::Rgb1
        | ExtendedColorType::Rgb2
        | ExtendedColorType::Rgb4
        | ExtendedColorType::Rgba1
        | ExtendedColorType::Rgba2
        | ExtendedColorType::Rgba4 => "palette",
        _ => "other",
    }
}
