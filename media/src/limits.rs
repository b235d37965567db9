//! Bounds enforced before pixels are allocated, so that a hostile file (a decompression bomb, a
//! huge EXIF block, a file of gigabytes) fails on that image instead of exhausting the process.

/// Resource bounds for [`crate::probe`] and [`crate::make_thumbnails`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input file, in bytes.
    pub max_input_bytes: u64,
    /// Largest accepted `width * height` declared by the header (checked before decoding).
    pub max_pixels: u64,
    /// Largest memory the decoder may allocate for one image, in bytes (decoded pixels and, for
    /// progressive JPEGs, the coefficient buffer).
    pub max_alloc_bytes: u64,
    /// Largest EXIF block that is parsed; a larger one is ignored (reported as skipped), never
    /// copied or parsed.
    pub max_exif_bytes: u64,
}

impl Default for Limits {
    /// 64 MP covers every camera phone and most DSLRs (a 45 MP full frame is 8192x5464);
    /// 512 MiB holds 64 MP as RGBA 16-bit; 64 MiB covers any product photo upload.
    fn default() -> Self {
        Self {
            max_input_bytes: 64 * 1024 * 1024,
            max_pixels: 64_000_000,
            max_alloc_bytes: 512 * 1024 * 1024,
            max_exif_bytes: 256 * 1024,
        }
    }
}

impl Limits {
    pub(crate) fn check_input(&self, len: usize) -> Result<(), crate::MediaError> {
        if len as u64 > self.max_input_bytes {
            return Err(crate::MediaError::TooLarge {
                what: "input",
                size: len as u64,
                max: self.max_input_bytes,
            });
        }
        Ok(())
    }

    pub(crate) fn check_pixels(&self, width: u32, height: u32) -> Result<(), crate::MediaError> {
        if width == 0 || height == 0 {
            return Err(crate::MediaError::Corrupt("image has a zero dimension".into()));
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(crate::MediaError::TooManyPixels {
                width,
                height,
                max: self.max_pixels,
            });
        }
        Ok(())
    }

    pub(crate) fn check_alloc(&self, what: &'static str, size: u64) -> Result<(), crate::MediaError> {
        if size > self.max_alloc_bytes {
            return Err(crate::MediaError::TooLarge {
                what,
                size,
                max: self.max_alloc_bytes,
            });
        }
        Ok(())
    }
}
