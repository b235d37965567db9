//! One decode per original into 8-bit sRGB(A) pixels, sized for the largest thumbnail.
//!
//! JPEG goes through libjpeg-turbo with DCT-domain downscaling (shrink-on-load): the decoder is
//! asked for 1/2, 1/4 or 1/8 of the stored size, the smallest that still covers the largest
//! thumbnail, which skips most of the inverse DCT and colour conversion work. CMYK/YCCK JPEGs are
//! decoded to CMYK and converted here. The other formats go through `image` with its allocation
//! limit, then 16-bit, grey, palette and CMYK are converted to 8-bit RGB(A); GIFs give their
//! first frame.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder};

use crate::probe::{image_error, image_limits, jpeg_error, Header, ImageFormat};
use crate::{sniff, Limits, MediaError};

/// Interleaved 8-bit pixels, 3 (RGB) or 4 (RGBA, straight alpha) channels.
#[derive(Debug, Clone)]
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
    /// The embedded ICC profile of the original, applied after the first resize.
    pub icc: Option<Vec<u8>>,
}

/// Decodes `bytes` to at least `target` (stored orientation) where the format can shrink on
/// load, else to full size. `flatten` composes alpha on white (for outputs without alpha).
pub(crate) fn decode(
    bytes: &[u8],
    header: &Header,
    target: (u32, u32),
    flatten: bool,
    limits: &Limits,
) -> Result<Pixels, MediaError> {
    let pixels = match header.format {
        ImageFormat::Jpeg => decode_jpeg(bytes, header, target, limits)?,
        _ => decode_other(bytes, header, limits)?,
    };
    Ok(if flatten && pixels.channels == 4 {
        flatten_on_white(pixels)
    } else {
        pixels
    })
}

/// The largest power-of-two reduction (8, 4, 2, 1) whose output still covers `target`.
pub(crate) fn jpeg_shrink(width: u32, height: u32, target: (u32, u32)) -> u32 {
    [8u32, 4, 2]
        .into_iter()
        .find(|d| width.div_ceil(*d) >= target.0 && height.div_ceil(*d) >= target.1)
        .unwrap_or(1)
}

fn decode_jpeg(
    bytes: &[u8],
    header: &Header,
    target: (u32, u32),
    limits: &Limits,
) -> Result<Pixels, MediaError> {
    let markers = sniff::jpeg_markers(bytes);
    let d = jpeg_shrink(header.width, header.height, target);
    let (w, h) = (header.width.div_ceil(d), header.height.div_ceil(d));
    let cmyk = header.color_type == "cmyk8";
    let bpp: u64 = if cmyk { 4 } else { 3 };
    // Output buffer, plus the whole-image coefficient buffer libjpeg keeps for progressive files
    // (2 bytes per coefficient per component, at full resolution).
    let mut need = u64::from(w) * u64::from(h) * bpp;
    if markers.progressive {
        need += u64::from(header.width) * u64::from(header.height) * u64::from(markers.components.max(1)) * 2;
    }
    limits.check_alloc("jpeg decoder memory", need)?;

    let format = if cmyk {
        turbojpeg::PixelFormat::CMYK
    } else {
        turbojpeg::PixelFormat::RGB
    };
    let (wu, hu) = (w as usize, h as usize);
    let mut buf = vec![0u8; wu * hu * bpp as usize];
    let mut dec = turbojpeg::Decompressor::new().map_err(jpeg_error)?;
    // Asking for the reduced size makes TurboJPEG pick the matching DCT scaling factor.
    let image = turbojpeg::Image {
        pixels: &mut buf[..],
        width: wu,
        pitch: wu * bpp as usize,
        height: hu,
        format,
    };
    if let Err(e) = dec.decompress(bytes, image) {
        // TurboJPEG reports libjpeg's warnings as errors after decoding the whole image. Stray
        // bytes before a marker are common in camera files and harmless: keep the pixels. Every
        // other warning (a truncated file above all) fails the image rather than publish a
        // half-grey thumbnail.
        if !e.to_string().contains("extraneous bytes before marker") {
            return Err(jpeg_error(e));
        }
    }
    // A CMYK profile cannot apply to the RGB made below: those get the naive conversion only.
    let icc = if cmyk {
        None
    } else {
        markers.icc_profile(crate::colour::MAX_ICC_BYTES)
    };
    if cmyk {
        buf = cmyk_to_rgb(&buf, markers.adobe);
    }
    Ok(Pixels {
        width: w,
        height: h,
        channels: 3,
        data: buf,
        icc,
    })
}

/// CMYK to RGB without a profile (naive, like most browsers without colour management). Adobe
/// files (every Photoshop CMYK JPEG) store the samples inverted.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let (c, m, y, k) = if inverted {
            (px[0], px[1], px[2], px[3])
        } else {
            (255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3])
        };
        let k = u32::from(k);
        out.push(((u32::from(c) * k + 127) / 255) as u8);
        out.push(((u32::from(m) * k + 127) / 255) as u8);
        out.push(((u32::from(y) * k + 127) / 255) as u8);
    }
    out
}

fn decode_other(bytes: &[u8], header: &Header, limits: &Limits) -> Result<Pixels, MediaError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), header.format.to_image());
    reader.limits(image_limits(limits));
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let icc = decoder
        .icc_profile()
        .ok()
        .flatten()
        .filter(|p| p.len() <= crate::colour::MAX_ICC_BYTES);
    // The decoded buffer plus the 8-bit RGBA copy made below.
    let rgba = u64::from(header.width) * u64::from(header.height) * 4;
    limits.check_alloc("decoder memory", decoder.total_bytes().saturating_add(rgba))?;
    let img = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    let (width, height) = (img.width(), img.height());
    // A grey image's profile is a grey profile: it does not apply to the RGB made here.
    let icc = if img.color().has_color() { icc } else { None };
    Ok(if img.color().has_alpha() {
        Pixels {
            width,
            height,
            channels: 4,
            data: img.into_rgba8().into_raw(),
            icc,
        }
    } else {
        Pixels {
            width,
            height,
            channels: 3,
            data: img.into_rgb8().into_raw(),
            icc,
        }
    })
}

/// Composes straight-alpha RGBA on white: the look of a transparent product photo on a page.
pub(crate) fn flatten_on_white(p: Pixels) -> Pixels {
    let mut out = Vec::with_capacity(p.data.len() / 4 * 3);
    for px in p.data.chunks_exact(4) {
        let a = u32::from(px[3]);
        for c in &px[..3] {
            out.push(((u32::from(*c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    Pixels {
        width: p.width,
        height: p.height,
        channels: 3,
        data: out,
        icc: p.icc,
    }
}
