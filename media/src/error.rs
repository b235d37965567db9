//! The crate's one error type. Every message is lowercase and says why the image was refused, so
//! that the API layer can show it to the user who uploaded the file.

use thiserror::Error;

/// Why an image could not be probed or turned into thumbnails.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MediaError {
    /// The magic bytes are none of JPEG, PNG, WebP, GIF or TIFF (the extension is never trusted).
    #[error("unsupported image format: only jpeg, png, webp, gif and tiff are accepted")]
    UnsupportedFormat,
    /// A byte count (the input, the decoder's memory, an EXIF block) is over its limit.
    #[error("{what}: {size} bytes, over the limit of {max} bytes")]
    TooLarge { what: &'static str, size: u64, max: u64 },
    /// The header declares more pixels than [`crate::Limits::max_pixels`]: refused before decoding.
    #[error("image declares {width}x{height} pixels, over the limit of {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    /// The file is truncated, corrupt, or uses a feature the decoder does not support.
    #[error("corrupt or unreadable image: {0}")]
    Corrupt(String),
    /// Encoding a thumbnail or a QR code failed.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The caller's request is invalid (a quality outside 1..=100, a size of 0, QR text too long).
    #[error("invalid request: {0}")]
    Invalid(String),
}
