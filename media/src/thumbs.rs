//! [`make_thumbnails`]: every size of one original from a single decode.
//!
//! The pipeline: header and pixel limit check, EXIF orientation, one decode sized for the largest
//! thumbnail (JPEG shrink-on-load), a resize to the largest size in stored orientation, the
//! orientation applied to that (cheap: it is the smallest image that still holds every size),
//! the embedded ICC profile converted to sRGB on that same image, then each smaller size resized
//! from the previous one (large -> medium -> small). Resizing is
//! fast_image_resize's Lanczos3 convolution, with alpha premultiplied. Outputs are encoded
//! without any metadata, so no EXIF (GPS, serial numbers, ...) ever reaches a derivative.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::decode::{decode, flatten_on_white, Pixels};
use crate::{colour, metadata, probe, Limits, MediaError};

/// The encoding of the thumbnails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Baseline JPEG, 4:2:0; transparency is flattened on white.
    #[default]
    Jpeg,
    /// Lossy WebP (libwebp); transparency is kept.
    WebP,
}

impl OutputFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::WebP => "image/webp",
        }
    }
}

/// One requested size: the thumbnail fits inside a `max_px` square.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeSpec {
    pub name: String,
    pub max_px: u32,
}

impl SizeSpec {
    pub fn new(name: impl Into<String>, max_px: u32) -> Self {
        Self {
            name: name.into(),
            max_px,
        }
    }
}

/// Which thumbnails to make and how to encode them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbSpec {
    pub sizes: Vec<SizeSpec>,
    pub format: OutputFormat,
    /// Encoder quality, 1-100.
    pub quality: u8,
}

impl Default for ThumbSpec {
    /// small 150, medium 300, large 800, JPEG at quality 85 (vipsthumbnail's usual setting for
    /// web thumbnails; visually clean at these sizes).
    fn default() -> Self {
        Self {
            sizes: vec![
                SizeSpec::new("small", 150),
                SizeSpec::new("medium", 300),
                SizeSpec::new("large", 800),
            ],
            format: OutputFormat::Jpeg,
            quality: 85,
        }
    }
}

/// One encoded thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// The size of a `width` x `height` image fitted inside a `max_px` square, aspect kept, never
/// upscaled.
pub fn fit(width: u32, height: u32, max_px: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_px {
        return (width, height);
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(max_px) + u64::from(long) / 2) / u64::from(long)).max(1) as u32
    };
    if width >= height {
        (max_px, scale(height))
    } else {
        (scale(width), max_px)
    }
}

/// Every size of `spec` from one decode of `bytes`, in the order of `spec.sizes`.
pub fn make_thumbnails(
    bytes: &[u8],
    spec: &ThumbSpec,
    limits: &Limits,
) -> Result<Vec<Thumbnail>, MediaError> {
    if !(1..=100).contains(&spec.quality) {
        return Err(MediaError::Invalid(format!(
            "quality {} is outside 1-100",
            spec.quality
        )));
    }
    if let Some(s) = spec.sizes.iter().find(|s| s.max_px == 0) {
        return Err(MediaError::Invalid(format!("size {:?} has max_px 0", s.name)));
    }
    if spec.sizes.is_empty() {
        return Ok(Vec::new());
    }
    let header = probe::header(bytes, limits)?;
    let orientation = metadata::read(bytes, header.format, limits.max_exif_bytes).orientation;
    let transposed = orientation >= 5;
    let (dw, dh) = if transposed {
        (header.height, header.width)
    } else {
        (header.width, header.height)
    };

    // Largest first: each size is resized from the one before it.
    let mut order: Vec<usize> = (0..spec.sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(spec.sizes[i].max_px));

    let (lw, lh) = fit(dw, dh, spec.sizes[order[0]].max_px);
    let stored_target = if transposed { (lh, lw) } else { (lw, lh) };
    let flatten = spec.format == OutputFormat::Jpeg;
    let decoded = decode(bytes, &header, stored_target, flatten, limits)?;

    let mut resizer = Resizer::new();
    let mut largest = resize(&mut resizer, &decoded, stored_target)?;
    // The profile is applied to the largest thumbnail, not the decoded original: the same
    // result (resizing is linear in either space's encoding) for a fraction of the pixels.
    if let Some(icc) = &decoded.icc {
        colour::to_srgb(&mut largest, icc);
    }
    drop(decoded);
    let mut current = orient(largest, orientation);

    let mut out: Vec<Option<Thumbnail>> = vec![None; spec.sizes.len()];
    for i in order {
        let size = &spec.sizes[i];
        let target = fit(dw, dh, size.max_px);
        if (current.width, current.height) != target {
            current = resize(&mut resizer, &current, target)?;
        }
        let bytes = encode(&current, spec.format, spec.quality)?;
        out[i] = Some(Thumbnail {
            name: size.name.clone(),
            width: current.width,
            height: current.height,
            bytes,
            content_type: spec.format.content_type(),
        });
    }
    Ok(out.into_iter().flatten().collect())
}

fn resize(resizer: &mut Resizer, src: &Pixels, (w, h): (u32, u32)) -> Result<Pixels, MediaError> {
    if (src.width, src.height) == (w, h) {
        return Ok(src.clone());
    }
    let pt = if src.channels == 4 {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let src_view = ImageRef::new(src.width, src.height, &src.data, pt)
        .map_err(|e| MediaError::Corrupt(e.to_string()))?;
    let mut dst = Image::new(w, h, pt);
    // Lanczos3 is vipsthumbnail's kernel too; alpha is premultiplied by default.
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(&src_view, &mut dst, &opts)
        .map_err(|e| MediaError::Corrupt(format!("resize: {e}")))?;
    Ok(Pixels {
        width: w,
        height: h,
        channels: src.channels,
        data: dst.into_vec(),
        icc: None,
    })
}

/// Applies EXIF orientation `o` (1-8) so that the pixels display upright.
pub(crate) fn orient(src: Pixels, o: u16) -> Pixels {
    if !(2..=8).contains(&o) {
        return src;
    }
    let (sw, sh) = (src.width as usize, src.height as usize);
    let (dw, dh) = if o >= 5 { (sh, sw) } else { (sw, sh) };
    let c = usize::from(src.channels);
    let mut data = vec![0u8; src.data.len()];
    for y in 0..dh {
        for x in 0..dw {
            let (sx, sy) = match o {
                2 => (sw - 1 - x, y),
                3 => (sw - 1 - x, sh - 1 - y),
                4 => (x, sh - 1 - y),
                5 => (y, x),
                6 => (y, sh - 1 - x),
                7 => (sw - 1 - y, sh - 1 - x),
                _ => (sw - 1 - y, x), // 8
            };
            let s = (sy * sw + sx) * c;
            let d = (y * dw + x) * c;
            data[d..d + c].copy_from_slice(&src.data[s..s + c]);
        }
    }
    Pixels {
        width: dw as u32,
        height: dh as u32,
        channels: src.channels,
        data,
        icc: None,
    }
}

/// libwebp's speed/size trade-off (0 fastest, 6 smallest). Its default, 4, spends about 60 ms on
/// the three sizes of a photo here, three times the rest of the pipeline; 2 halves that for files
/// a few percent larger.
const WEBP_METHOD: i32 = 2;

fn encode(p: &Pixels, format: OutputFormat, quality: u8) -> Result<Vec<u8>, MediaError> {
    match format {
        OutputFormat::Jpeg => {
            let flat;
            let p = if p.channels == 4 {
                flat = flatten_on_white(p.clone());
                &flat
            } else {
                p
            };
            let mut c = turbojpeg::Compressor::new().map_err(|e| MediaError::Encode(e.to_string()))?;
            c.set_quality(i32::from(quality));
            c.set_subsamp(turbojpeg::Subsamp::Sub2x2);
            let w = p.width as usize;
            let image = turbojpeg::Image {
                pixels: &p.data[..],
                width: w,
                pitch: w * 3,
                height: p.height as usize,
                format: turbojpeg::PixelFormat::RGB,
            };
            c.compress_to_vec(image)
                .map_err(|e| MediaError::Encode(format!("jpeg: {e}")))
        }
        OutputFormat::WebP => {
            let enc = if p.channels == 4 {
                webp::Encoder::from_rgba(&p.data, p.width, p.height)
            } else {
                webp::Encoder::from_rgb(&p.data, p.width, p.height)
            };
            let mut config = webp::WebPConfig::new()
                .map_err(|()| MediaError::Encode("webp: libwebp version mismatch".into()))?;
            config.quality = f32::from(quality);
            config.alpha_compression = 1;
            config.method = WEBP_METHOD;
            let mem = enc
                .encode_advanced(&config)
                .map_err(|e| MediaError::Encode(format!("webp: {e:?}")))?;
            if mem.is_empty() {
                return Err(MediaError::Encode("webp: libwebp returned no data".into()));
            }
            Ok(mem.to_vec())
        }
    }
}
