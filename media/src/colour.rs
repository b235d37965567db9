//! Embedded ICC profiles converted to sRGB, so that a Display P3 phone photo or an Adobe RGB
//! camera file does not look washed out once its profile is gone (thumbnails carry no metadata,
//! so browsers read them as sRGB). Images without a profile are taken as sRGB already. A profile
//! that does not parse, or is not an RGB profile, is ignored rather than failing the image.

use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

use crate::decode::Pixels;

/// Largest profile read (real ones are 0.5-60 KB; a few printer profiles reach 1-2 MB).
pub(crate) const MAX_ICC_BYTES: usize = 4 * 1024 * 1024;

/// Converts `p` from the space of `icc` to sRGB in place (perceptual intent, moxcms' default).
pub(crate) fn to_srgb(p: &mut Pixels, icc: &[u8]) {
    let Ok(src) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    if src.color_space != DataColorSpace::Rgb {
        return;
    }
    let layout = if p.channels == 4 {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let srgb = ColorProfile::new_srgb();
    let Ok(transform) = src.create_transform_8bit(layout, &srgb, layout, TransformOptions::default()) else {
        return;
    };
    let mut out = vec![0u8; p.data.len()];
    if transform.transform(&p.data, &mut out).is_ok() {
        p.data = out;
    }
}
