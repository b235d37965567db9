//! Product images: what a file is, its thumbnails, and QR codes. Pure, synchronous functions
//! over byte slices (no I/O, no async): callers run them on a blocking pool.
//!
//! Module map:
//! - [`error`]: [`MediaError`], the one error type, with messages that say why an image failed.
//! - [`limits`]: [`Limits`], the input size, pixel and memory bounds every entry point enforces
//!   before it allocates for pixels.
//! - `sniff`: the format from the magic bytes (never the file name), and cheap container walks
//!   (JPEG markers, PNG chunks, RIFF chunks, GIF blocks) used by probe and decode.
//! - `metadata`: the bounded EXIF block of each container, its summary, and the orientation.
//! - [`probe`]: [`ImageInfo`] from the headers alone; refuses decompression bombs.
//! - `decode`: one decode per original into 8-bit RGB(A): JPEG through libjpeg-turbo with
//!   DCT-domain downscaling (shrink-on-load), the rest through `image`.
//! - `colour`: embedded ICC profiles (Display P3, Adobe RGB, ...) converted to sRGB with moxcms.
//! - [`thumbs`]: [`ThumbSpec`] and [`make_thumbnails`]: orientation, resizing with
//!   fast_image_resize, alpha flattening, JPEG/WebP encoding without metadata.
//! - [`qr`]: QR codes as PNG and SVG.
//! - [`synth`]: synthetic photo-like JPEGs for tests, benches and the load-test script.

mod colour;
mod decode;
pub mod error;
pub mod limits;
mod metadata;
pub mod probe;
pub mod qr;
mod sniff;
pub mod synth;
pub mod thumbs;

pub use error::MediaError;
pub use limits::Limits;
pub use probe::{probe, ImageFormat, ImageInfo};
pub use qr::{qr_png, qr_svg};
pub use thumbs::{fit, make_thumbnails, OutputFormat, SizeSpec, ThumbSpec, Thumbnail};

#[cfg(test)]
mod tests;
