//! QR codes for product pages, as PNG (for print and download) and SVG (for the web page).

use image::{ImageEncoder, Luma};
use qrcode::{Color, EcLevel, QrCode};

use crate::MediaError;

/// The quiet zone the QR specification requires around the symbol, in modules.
const QUIET_ZONE: u32 = 4;

fn code(text: &str) -> Result<QrCode, MediaError> {
    // Medium error correction: survives a smudged print, keeps URLs in small versions.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| MediaError::Invalid(format!("qr code: {e}")))
}

/// A PNG of the QR code for `text`, `module_px` pixels per module (1-64), with the quiet zone.
pub fn qr_png(text: &str, module_px: u32) -> Result<Vec<u8>, MediaError> {
    if !(1..=64).contains(&module_px) {
        return Err(MediaError::Invalid(format!(
            "module size {module_px} is outside 1-64"
        )));
    }
    let code = code(text)?;
    let modules = code.width() as u32;
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * module_px;
    let img = image::ImageBuffer::from_fn(side, side, |x, y| {
        let (mx, my) = (x / module_px, y / module_px);
        let dark = mx >= QUIET_ZONE
            && my >= QUIET_ZONE
            && mx < modules + QUIET_ZONE
            && my < modules + QUIET_ZONE
            && colors[((my - QUIET_ZONE) * modules + (mx - QUIET_ZONE)) as usize] == Color::Dark;
        Luma([if dark { 0u8 } else { 255 }])
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), side, side, image::ExtendedColorType::L8)
        .map_err(|e| MediaError::Encode(format!("png: {e}")))?;
    Ok(out)
}

/// An SVG document of the QR code for `text`, scalable, with the quiet zone.
pub fn qr_svg(text: &str) -> Result<String, MediaError> {
    let code = code(text)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}
