//! Synthetic photo-like JPEGs for tests, benches and `loadtests/thumbnail_bench.sh`: smooth
//! colour gradients, hard-edged shapes, a medium-scale texture and sensor-like noise, so that the
//! file compresses (and so decodes) like a real product photo rather than a flat test card.

/// A `width` x `height` photo-like image as RGB8, deterministic for a given `seed`.
pub fn photo_rgb(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // Separable low-frequency colour field.
    let wave = |n: usize, f: f32, p: f32| -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 / n as f32 * f * std::f32::consts::TAU + p).sin())
            .collect()
    };
    let cols: Vec<Vec<f32>> = (0..3).map(|c| wave(w, 1.3 + c as f32 * 0.7, c as f32)).collect();
    let rows: Vec<Vec<f32>> = (0..3)
        .map(|c| wave(h, 0.9 + c as f32 * 0.5, 2.0 - c as f32))
        .collect();
    // A texture lattice every 16 px, bilinearly interpolated (fabric, wood, skin-like detail).
    let (gw, gh) = (w / 16 + 2, h / 16 + 2);
    let lattice: Vec<f32> = (0..gw * gh).map(|_| (rng.next() % 41) as f32 - 20.0).collect();
    // A few discs with hard edges (objects against a background).
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
        .map(|_| {
            let cx = (rng.next() % w as u64) as f32;
            let cy = (rng.next() % h as u64) as f32;
            let r = (w.min(h) as f32) * (0.08 + (rng.next() % 100) as f32 / 600.0);
            let col = [
                (rng.next() % 200) as f32,
                (rng.next() % 200) as f32,
                (rng.next() % 200) as f32,
            ];
            (cx, cy, r, col)
        })
        .collect();
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        let (gy, fy) = (y / 16, (y % 16) as f32 / 16.0);
        for x in 0..w {
            let (gx, fx) = (x / 16, (x % 16) as f32 / 16.0);
            let l = |i: usize, j: usize| lattice[j * gw + i];
            let tex = (l(gx, gy) * (1.0 - fx) + l(gx + 1, gy) * fx) * (1.0 - fy)
                + (l(gx, gy + 1) * (1.0 - fx) + l(gx + 1, gy + 1) * fx) * fy;
            let mut base = [0f32; 3];
            for (c, b) in base.iter_mut().enumerate() {
                *b = 128.0 + 50.0 * cols[c][x] + 40.0 * rows[c][y];
            }
            for (cx, cy, r, col) in &discs {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                if dx * dx + dy * dy < r * r {
                    base = *col;
                    break;
                }
            }
            let noise = rng.next();
            for c in 0..3 {
                let n = ((noise >> (c * 8)) & 0x1F) as f32 - 15.5;
                out[(y * w + x) * 3 + c] = (base[c] + tex + n).clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// [`photo_rgb`] encoded as a baseline 4:2:0 JPEG at `quality` (what cameras and phones write).
/// Panics if libjpeg-turbo fails, which only a zero dimension makes it do: a test helper.
pub fn photo_jpeg(width: u32, height: u32, quality: u8, seed: u64) -> Vec<u8> {
    let rgb = photo_rgb(width, height, seed);
    let image = turbojpeg::Image {
        pixels: &rgb[..],
        width: width as usize,
        pitch: width as usize * 3,
        height: height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    let mut c = turbojpeg::Compressor::new().expect("turbojpeg compressor");
    c.set_quality(i32::from(quality));
    c.set_subsamp(turbojpeg::Subsamp::Sub2x2);
    c.compress_to_vec(image).expect("encoding a synthetic photo")
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
