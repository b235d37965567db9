//! The crate's tests: every input is generated here (no fixtures), covering orientation, alpha,
//! each input format, the bad inputs of the issue (bombs, truncation, lies, huge EXIF) and the
//! promise that no metadata reaches a derivative.

use std::io::Cursor;
use std::time::{Duration, Instant};

use exif::{Field, In, Tag, Value};
use image::ImageEncoder;

use crate::decode::jpeg_shrink;
use crate::thumbs::{fit, orient};
use crate::*;

const RED: [u8; 3] = [230, 20, 20];
const BLUE: [u8; 3] = [20, 40, 220];

fn jpeg_from(w: u32, h: u32, px: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&px(x, y));
        }
    }
    let img = turbojpeg::Image {
        pixels: &rgb[..],
        width: w as usize,
        pitch: w as usize * 3,
        height: h as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(img, 92, turbojpeg::Subsamp::Sub2x2)
        .unwrap()
        .to_vec()
}

/// A TIFF-structured EXIF block holding `fields`.
fn exif_block(fields: &[Field]) -> Vec<u8> {
    let mut w = exif::experimental::Writer::new();
    for f in fields {
        w.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    w.write(&mut out, false).unwrap();
    out.into_inner()
}

/// `jpeg` with an APP1 `Exif` segment holding `tiff` right after SOI.
fn with_app1(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let len = u16::try_from(tiff.len() + 8).unwrap();
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn field(tag: Tag, value: Value) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    }
}

fn png(w: u32, h: u32, color: image::ExtendedColorType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(data, w, h, color)
        .unwrap();
    out
}

fn rgb_of_jpeg(bytes: &[u8]) -> turbojpeg::Image<Vec<u8>> {
    turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGB).unwrap()
}

fn pixel(img: &turbojpeg::Image<Vec<u8>>, x: usize, y: usize) -> [u8; 3] {
    let i = y * img.pitch + x * 3;
    [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
}

fn near(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= tol)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_in = kind.to_vec();
    crc_in.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_in).to_be_bytes());
    out
}

/// The output JPEG has no APP1 segment at all (no EXIF, no XMP).
fn assert_no_metadata(jpeg: &[u8]) {
    let markers = crate::sniff::jpeg_markers(jpeg);
    assert!(markers.exif.is_none());
    assert!(
        !jpeg.windows(2).take(2000).any(|w| w == [0xFF, 0xE1]),
        "an APP1 segment in the output"
    );
    assert!(!jpeg.windows(4).any(|w| w == b"Exif"));
}

#[test]
fn default_spec_makes_three_jpeg_sizes_fitting_their_squares() {
    let src = jpeg_from(1000, 667, |x, y| [(x % 256) as u8, (y % 256) as u8, 128]);
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    let dims: Vec<_> = thumbs
        .iter()
        .map(|t| (t.name.as_str(), t.width, t.height))
        .collect();
    assert_eq!(
        dims,
        [("small", 150, 100), ("medium", 300, 200), ("large", 800, 534)]
    );
    for t in &thumbs {
        assert_eq!(t.content_type, "image/jpeg");
        let img = rgb_of_jpeg(&t.bytes);
        assert_eq!((img.width as u32, img.height as u32), (t.width, t.height));
        // Aspect kept within a pixel.
        let expected_h = f64::from(t.width) * 667.0 / 1000.0;
        assert!((f64::from(t.height) - expected_h).abs() <= 1.0, "{t:?}");
        assert_no_metadata(&t.bytes);
    }
}

#[test]
fn small_images_are_never_upscaled() {
    let src = jpeg_from(120, 60, |_, _| RED);
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    for t in &thumbs {
        assert_eq!((t.width, t.height), (120, 60), "{}", t.name);
    }
    // Between the sizes: kept for the larger ones, reduced for the smaller.
    let src = jpeg_from(200, 100, |_, _| RED);
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    let dims: Vec<_> = thumbs.iter().map(|t| (t.width, t.height)).collect();
    assert_eq!(dims, [(150, 75), (200, 100), (200, 100)]);
}

#[test]
fn exif_orientation_6_rotates_clockwise_and_moves_the_corner() {
    // 400x200 stored, a red top-left corner block; orientation 6 = rotate 90 degrees clockwise,
    // so it displays 200x400 with the red block at the top right.
    let src = jpeg_from(400, 200, |x, y| if x < 100 && y < 60 { RED } else { BLUE });
    let tiff = exif_block(&[field(Tag::Orientation, Value::Short(vec![6]))]);
    let src = with_app1(&src, &tiff);
    let info = probe(&src, &Limits::default()).unwrap();
    assert_eq!(info.orientation, 6);
    assert_eq!((info.width, info.height), (400, 200));
    assert_eq!((info.display_width, info.display_height), (200, 400));

    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    let dims: Vec<_> = thumbs.iter().map(|t| (t.width, t.height)).collect();
    assert_eq!(dims, [(75, 150), (150, 300), (200, 400)]);
    let medium = rgb_of_jpeg(&thumbs[1].bytes);
    assert!(
        near(pixel(&medium, 145, 5), RED, 40),
        "top right {:?}",
        pixel(&medium, 145, 5)
    );
    assert!(
        near(pixel(&medium, 5, 5), BLUE, 40),
        "top left {:?}",
        pixel(&medium, 5, 5)
    );
    assert!(near(pixel(&medium, 145, 295), BLUE, 40), "bottom right");
}

#[test]
fn every_orientation_maps_corners_like_exif_says() {
    // 3x2 stored pixels numbered 0..6; where stored pixel 0 (top-left) lands for each orientation.
    let src = crate::decode::Pixels {
        width: 3,
        height: 2,
        channels: 3,
        data: (0..18).map(|i| (i / 3) as u8).collect(),
        icc: None,
    };
    let top_left_lands = |o: u16| {
        let p = orient(src.clone(), o);
        let i = p.data.chunks(3).position(|px| px[0] == 0).unwrap() as u32;
        (p.width, p.height, i % p.width, i / p.width)
    };
    assert_eq!(top_left_lands(1), (3, 2, 0, 0));
    assert_eq!(top_left_lands(2), (3, 2, 2, 0));
    assert_eq!(top_left_lands(3), (3, 2, 2, 1));
    assert_eq!(top_left_lands(4), (3, 2, 0, 1));
    assert_eq!(top_left_lands(5), (2, 3, 0, 0));
    assert_eq!(top_left_lands(6), (2, 3, 1, 0));
    assert_eq!(top_left_lands(7), (2, 3, 1, 2));
    assert_eq!(top_left_lands(8), (2, 3, 0, 2));
}

#[test]
fn gps_and_personal_exif_are_reported_but_never_copied() {
    let src = jpeg_from(320, 240, |_, _| BLUE);
    let fields = [
        field(Tag::Make, Value::Ascii(vec![b"Canon".to_vec()])),
        field(Tag::Model, Value::Ascii(vec![b"EOS R5".to_vec()])),
        field(
            Tag::DateTimeOriginal,
            Value::Ascii(vec![b"2026:11:02 10:11:12".to_vec()]),
        ),
        field(Tag::Artist, Value::Ascii(vec![b"Jane Doe".to_vec()])),
        field(Tag::GPSLatitudeRef, Value::Ascii(vec![b"N".to_vec()])),
        field(
            Tag::GPSLatitude,
            Value::Rational(vec![(48, 1).into(), (51, 1).into(), (2406, 100).into()]),
        ),
    ];
    let src = with_app1(&src, &exif_block(&fields));
    let info = probe(&src, &Limits::default()).unwrap();
    assert_eq!(info.exif.get("make").map(String::as_str), Some("Canon"));
    assert_eq!(info.exif.get("model").map(String::as_str), Some("EOS R5"));
    assert!(
        info.exif["datetime_original"].starts_with("2026-11-02"),
        "{:?}",
        info.exif
    );
    assert!(info.exif_has_gps);
    assert!(info.exif_has_personal);
    assert!(info.exif.keys().all(|k| !k.contains("gps")));
    assert!(info
        .exif
        .values()
        .all(|v| !v.contains("Jane") && !v.contains("48")));

    for format in [OutputFormat::Jpeg, OutputFormat::WebP] {
        let spec = ThumbSpec {
            format,
            ..ThumbSpec::default()
        };
        for t in make_thumbnails(&src, &spec, &Limits::default()).unwrap() {
            assert!(!t
                .bytes
                .windows(4)
                .any(|w| w == b"Exif" || w == b"EXIF" || w == b"Cano"));
            assert!(!t.bytes.windows(8).any(|w| w == b"Jane Doe"));
        }
    }
}

#[test]
fn png_alpha_is_kept_in_webp_and_flattened_on_white_in_jpeg() {
    // Left half transparent, right half opaque red.
    let (w, h) = (64u32, 64u32);
    let data: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            if i % w < w / 2 {
                [0, 0, 0, 0]
            } else {
                [RED[0], RED[1], RED[2], 255]
            }
        })
        .collect();
    let src = png(w, h, image::ExtendedColorType::Rgba8, &data);
    let info = probe(&src, &Limits::default()).unwrap();
    assert_eq!(
        (info.format, info.color_type, info.has_alpha),
        (ImageFormat::Png, "rgba8", true)
    );

    let spec = ThumbSpec {
        format: OutputFormat::WebP,
        ..ThumbSpec::default()
    };
    let webp = make_thumbnails(&src, &spec, &Limits::default()).unwrap();
    assert_eq!(webp[0].content_type, "image/webp");
    let img = image::load_from_memory_with_format(&webp[2].bytes, image::ImageFormat::WebP)
        .unwrap()
        .to_rgba8();
    assert!(
        img.get_pixel(2, 32)[3] < 10,
        "transparent side kept: {:?}",
        img.get_pixel(2, 32)
    );
    assert!(img.get_pixel(60, 32)[3] > 245);

    let jpeg = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    let img = rgb_of_jpeg(&jpeg[2].bytes);
    assert!(
        near(pixel(&img, 2, 32), [255, 255, 255], 8),
        "flattened on white: {:?}",
        pixel(&img, 2, 32)
    );
    assert!(near(pixel(&img, 60, 32), RED, 30));
}

#[test]
fn webp_input_is_decoded() {
    let data: Vec<u8> = (0..500 * 250).flat_map(|_| RED).collect();
    let mut src = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut src)
        .write_image(&data, 500, 250, image::ExtendedColorType::Rgb8)
        .unwrap();
    let info = probe(&src, &Limits::default()).unwrap();
    assert_eq!(
        (info.format, info.width, info.height, info.animated),
        (ImageFormat::WebP, 500, 250, false)
    );
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    assert_eq!((thumbs[1].width, thumbs[1].height), (300, 150));
    assert!(near(pixel(&rgb_of_jpeg(&thumbs[1].bytes), 150, 75), RED, 30));
}

#[test]
fn tiff_input_is_decoded() {
    let data: Vec<u8> = (0..300 * 200).flat_map(|_| BLUE).collect();
    let mut src = Cursor::new(Vec::new());
    image::codecs::tiff::TiffEncoder::new(&mut src)
        .write_image(&data, 300, 200, image::ExtendedColorType::Rgb8)
        .unwrap();
    let src = src.into_inner();
    assert_eq!(probe(&src, &Limits::default()).unwrap().format, ImageFormat::Tiff);
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    assert_eq!((thumbs[0].width, thumbs[0].height), (150, 100));
    assert!(near(pixel(&rgb_of_jpeg(&thumbs[0].bytes), 75, 50), BLUE, 30));
}

#[test]
fn cmyk_jpeg_becomes_srgb() {
    // Adobe CMYK as Photoshop writes it (inverted samples): C=0 M=100% Y=100% K=0 is red.
    let (w, h) = (240usize, 160usize);
    let cmyk: Vec<u8> = (0..w * h).flat_map(|_| [255u8, 0, 0, 255]).collect();
    let img = turbojpeg::Image {
        pixels: &cmyk[..],
        width: w,
        pitch: w * 4,
        height: h,
        format: turbojpeg::PixelFormat::CMYK,
    };
    let src = turbojpeg::compress(img, 95, turbojpeg::Subsamp::None)
        .unwrap()
        .to_vec();
    let info = probe(&src, &Limits::default()).unwrap();
    assert_eq!(info.color_type, "cmyk8");
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    assert_eq!((thumbs[0].width, thumbs[0].height), (150, 100));
    let px = pixel(&rgb_of_jpeg(&thumbs[0].bytes), 75, 50);
    assert!(near(px, [255, 0, 0], 40), "{px:?}");
}

#[test]
fn sixteen_bit_png_becomes_8_bit() {
    let (w, h) = (200u32, 100u32);
    let data: Vec<u8> = (0..w * h)
        .flat_map(|_| [0xFFu8, 0xFF, 0x10, 0x00, 0x10, 0x00])
        .collect();
    let src = png(w, h, image::ExtendedColorType::Rgb16, &data);
    let info = probe(&src, &Limits::default()).unwrap();
    assert_eq!(info.color_type, "rgb16");
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    let px = pixel(&rgb_of_jpeg(&thumbs[0].bytes), 75, 37);
    assert!(near(px, [255, 0, 0], 30), "{px:?}");
}

#[test]
fn grey_and_palette_pngs_become_rgb() {
    let grey: Vec<u8> = (0..100 * 100).map(|i| (i % 256) as u8).collect();
    let src = png(100, 100, image::ExtendedColorType::L8, &grey);
    assert_eq!(probe(&src, &Limits::default()).unwrap().color_type, "luma8");
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    assert_eq!((thumbs[2].width, thumbs[2].height), (100, 100));

    // An 8-bit palette PNG (colour type 3), 16x16, every index 1 = red, in a stored zlib block.
    let (w, h) = (16u32, 16u32);
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
    let raw: Vec<u8> = (0..h)
        .flat_map(|_| std::iter::once(0u8).chain(std::iter::repeat_n(1u8, w as usize)))
        .collect();
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    let len = raw.len() as u16;
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut src = b"\x89PNG\r\n\x1a\n".to_vec();
    src.extend(png_chunk(b"IHDR", &ihdr));
    src.extend(png_chunk(b"PLTE", &[0, 0, 0, RED[0], RED[1], RED[2]]));
    src.extend(png_chunk(b"IDAT", &zlib));
    src.extend(png_chunk(b"IEND", &[]));
    let info = probe(&src, &Limits::default()).unwrap();
    assert_eq!((info.width, info.height, info.has_alpha), (16, 16, false));
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    let px = pixel(&rgb_of_jpeg(&thumbs[0].bytes), 8, 8);
    assert!(near(px, RED, 30), "{px:?}");
}

#[test]
fn animated_gif_gives_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, Rgba, RgbaImage};
    let frame = |c: [u8; 3]| {
        Frame::from_parts(
            RgbaImage::from_pixel(90, 60, Rgba([c[0], c[1], c[2], 255])),
            0,
            0,
            Delay::from_numer_denom_ms(100, 1),
        )
    };
    let mut src = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut src);
        enc.encode_frames(vec![frame(RED), frame(BLUE), frame(BLUE)])
            .unwrap();
    }
    let info = probe(&src, &Limits::default()).unwrap();
    assert_eq!(
        (info.format, info.frames, info.animated),
        (ImageFormat::Gif, Some(3), true)
    );
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    assert_eq!((thumbs[0].width, thumbs[0].height), (90, 60));
    let px = pixel(&rgb_of_jpeg(&thumbs[0].bytes), 45, 30);
    assert!(near(px, RED, 40), "first frame is red: {px:?}");
}

#[test]
fn png_bomb_is_refused_from_the_header_fast() {
    // A valid PNG header declaring 50,000 x 50,000 RGBA (10 GB decoded) and a tiny IDAT.
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut src = b"\x89PNG\r\n\x1a\n".to_vec();
    src.extend(png_chunk(b"IHDR", &ihdr));
    src.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    src.extend(png_chunk(b"IEND", &[]));
    let start = Instant::now();
    let expected = MediaError::TooManyPixels {
        width: 50_000,
        height: 50_000,
        max: Limits::default().max_pixels,
    };
    assert_eq!(probe(&src, &Limits::default()).unwrap_err(), expected);
    assert_eq!(
        make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap_err(),
        expected
    );
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "refused before decoding"
    );
    assert!(expected.to_string().contains("50000x50000"));
}

#[test]
fn jpeg_over_the_pixel_limit_is_refused() {
    let src = jpeg_from(400, 300, |_, _| RED);
    let limits = Limits {
        max_pixels: 100_000,
        ..Limits::default()
    };
    assert!(matches!(
        probe(&src, &limits),
        Err(MediaError::TooManyPixels {
            width: 400,
            height: 300,
            ..
        })
    ));
}

#[test]
fn input_and_memory_limits_are_enforced() {
    let src = jpeg_from(400, 300, |_, _| RED);
    let small_input = Limits {
        max_input_bytes: 100,
        ..Limits::default()
    };
    assert!(matches!(
        probe(&src, &small_input),
        Err(MediaError::TooLarge { what: "input", .. })
    ));
    let small_alloc = Limits {
        max_alloc_bytes: 1000,
        ..Limits::default()
    };
    let err = make_thumbnails(&src, &ThumbSpec::default(), &small_alloc).unwrap_err();
    assert!(matches!(err, MediaError::TooLarge { .. }), "{err}");
    let png_src = png(300, 300, image::ExtendedColorType::L8, &vec![7u8; 300 * 300]);
    let err = make_thumbnails(&png_src, &ThumbSpec::default(), &small_alloc).unwrap_err();
    assert!(matches!(err, MediaError::TooLarge { .. }), "{err}");
}

#[test]
fn truncated_jpeg_fails_clearly_or_gives_a_correct_thumbnail() {
    let src = jpeg_from(600, 400, |x, y| [(x % 256) as u8, (y % 256) as u8, 90]);
    for cut in [src.len() / 2, 300, 20] {
        match make_thumbnails(&src[..cut], &ThumbSpec::default(), &Limits::default()) {
            Err(MediaError::Corrupt(msg)) => assert!(!msg.is_empty()),
            Ok(thumbs) => assert_eq!((thumbs[2].width, thumbs[2].height), (600, 400)),
            Err(other) => panic!("unexpected error for a cut at {cut}: {other}"),
        }
    }
}

#[test]
fn embedded_display_p3_profile_is_converted_to_srgb() {
    let p3 = moxcms::ColorProfile::new_display_p3();
    let icc = p3.encode().unwrap();
    let colour = [200u8, 60, 60];
    let src = jpeg_from(300, 200, |_, _| colour);
    // One APP2 ICC_PROFILE chunk (1 of 1) right after SOI.
    let mut tagged = vec![0xFF, 0xD8, 0xFF, 0xE2];
    tagged.extend_from_slice(&u16::try_from(icc.len() + 16).unwrap().to_be_bytes());
    tagged.extend_from_slice(b"ICC_PROFILE\0\x01\x01");
    tagged.extend_from_slice(&icc);
    tagged.extend_from_slice(&src[2..]);

    let srgb = moxcms::ColorProfile::new_srgb();
    let t = p3
        .create_transform_8bit(
            moxcms::Layout::Rgb,
            &srgb,
            moxcms::Layout::Rgb,
            Default::default(),
        )
        .unwrap();
    let mut expected = [0u8; 3];
    t.transform(&colour, &mut expected).unwrap();
    assert!(
        !near(expected, colour, 10),
        "the test colour must move: {expected:?}"
    );

    let plain = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    let converted = make_thumbnails(&tagged, &ThumbSpec::default(), &Limits::default()).unwrap();
    let (a, b) = (
        pixel(&rgb_of_jpeg(&plain[0].bytes), 75, 50),
        pixel(&rgb_of_jpeg(&converted[0].bytes), 75, 50),
    );
    assert!(near(a, colour, 8), "no profile: taken as sRGB, {a:?}");
    assert!(probe(&tagged, &Limits::default()).unwrap().has_icc_profile);
    assert!(!probe(&src, &Limits::default()).unwrap().has_icc_profile);
    assert!(near(b, expected, 8), "P3 converted: {b:?} vs {expected:?}");
    assert_no_metadata(&converted[0].bytes);
    assert!(!converted[0].bytes.windows(11).any(|w| w == b"ICC_PROFILE"));
}

#[test]
fn stray_bytes_before_a_marker_are_tolerated() {
    // "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9": common in camera files.
    let src = jpeg_from(300, 200, |_, _| BLUE);
    let mut stray = src[..src.len() - 2].to_vec();
    stray.extend_from_slice(&[0x12, 0x34, 0x56, 0xFF, 0xD9]);
    let thumbs = make_thumbnails(&stray, &ThumbSpec::default(), &Limits::default()).unwrap();
    assert_eq!((thumbs[2].width, thumbs[2].height), (300, 200));
}

#[test]
fn truncated_jpeg_says_so() {
    let src = synth::photo_jpeg(400, 300, 90, 3);
    let err = make_thumbnails(&src[..src.len() / 2], &ThumbSpec::default(), &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt or unreadable image: jpeg: premature end of jpeg file"
    );
}

#[test]
fn random_bytes_and_lying_files_are_refused() {
    let mut state = 0x1234_5678_9ABC_DEF0u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert_eq!(
        probe(&noise, &Limits::default()).unwrap_err(),
        MediaError::UnsupportedFormat
    );
    assert_eq!(
        make_thumbnails(&noise, &ThumbSpec::default(), &Limits::default()).unwrap_err(),
        MediaError::UnsupportedFormat
    );
    assert!(MediaError::UnsupportedFormat
        .to_string()
        .contains("jpeg, png, webp, gif and tiff"));
    // Magic bytes of each format followed by garbage.
    for magic in [
        &b"\xFF\xD8\xFF\xE0"[..],
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"RIFF\0\0\0\0WEBP",
        b"II*\0",
    ] {
        let mut lying = magic.to_vec();
        lying.extend_from_slice(&noise);
        let err = make_thumbnails(&lying, &ThumbSpec::default(), &Limits::default()).unwrap_err();
        assert!(
            matches!(err, MediaError::Corrupt(_) | MediaError::TooManyPixels { .. }),
            "{magic:?}: {err}"
        );
    }
    assert!(matches!(
        probe(&[], &Limits::default()),
        Err(MediaError::UnsupportedFormat)
    ));
}

#[test]
fn format_comes_from_magic_bytes_not_the_name() {
    // A PNG uploaded as "photo.jpg" is still a PNG: the API never sees a name.
    let src = png(10, 10, image::ExtendedColorType::L8, &[0u8; 100]);
    assert_eq!(probe(&src, &Limits::default()).unwrap().format, ImageFormat::Png);
    let jpeg = jpeg_from(10, 10, |_, _| RED);
    assert_eq!(
        probe(&jpeg, &Limits::default()).unwrap().format,
        ImageFormat::Jpeg
    );
}

#[test]
fn huge_exif_blocks_are_bounded() {
    // JPEG: the largest possible APP1 (64 KiB), full of garbage after a valid TIFF header.
    let src = jpeg_from(400, 300, |_, _| BLUE);
    let mut tiff = exif_block(&[field(Tag::Orientation, Value::Short(vec![3]))]);
    tiff.resize(65_000, 0xAB);
    let big = with_app1(&src, &tiff);
    let info = probe(&big, &Limits::default()).unwrap();
    assert_eq!(info.orientation, 3);
    let thumbs = make_thumbnails(&big, &ThumbSpec::default(), &Limits::default()).unwrap();
    assert_eq!((thumbs[2].width, thumbs[2].height), (400, 300));
    assert!(
        thumbs.iter().all(|t| t.bytes.len() < 20_000),
        "the block is not copied"
    );

    // PNG: a 2 MiB eXIf chunk, over the 256 KiB limit: skipped, the image still thumbnails.
    let base = png(50, 40, image::ExtendedColorType::L8, &[9u8; 2000]);
    let mut huge = base[..33].to_vec(); // signature + IHDR
    huge.extend(png_chunk(b"eXIf", &vec![0x4Du8; 2 * 1024 * 1024]));
    huge.extend_from_slice(&base[33..]);
    let info = probe(&huge, &Limits::default()).unwrap();
    assert_eq!(info.exif_skipped_bytes, Some(2 * 1024 * 1024));
    assert!(info.exif.is_empty());
    let thumbs = make_thumbnails(&huge, &ThumbSpec::default(), &Limits::default()).unwrap();
    assert_eq!((thumbs[0].width, thumbs[0].height), (50, 40));
}

#[test]
fn invalid_specs_are_refused() {
    let src = jpeg_from(10, 10, |_, _| RED);
    let bad_quality = ThumbSpec {
        quality: 0,
        ..ThumbSpec::default()
    };
    assert!(matches!(
        make_thumbnails(&src, &bad_quality, &Limits::default()),
        Err(MediaError::Invalid(_))
    ));
    let zero = ThumbSpec {
        sizes: vec![thumbs::SizeSpec::new("x", 0)],
        ..ThumbSpec::default()
    };
    assert!(matches!(
        make_thumbnails(&src, &zero, &Limits::default()),
        Err(MediaError::Invalid(_))
    ));
}

#[test]
fn synthetic_photo_thumbnails_use_shrink_on_load() {
    assert_eq!(jpeg_shrink(4000, 3000, fit(4000, 3000, 800)), 4);
    assert_eq!(jpeg_shrink(2000, 2000, fit(2000, 2000, 800)), 2);
    assert_eq!(jpeg_shrink(6000, 4000, fit(6000, 4000, 150)), 8);
    assert_eq!(jpeg_shrink(700, 500, fit(700, 500, 800)), 1);
    let src = synth::photo_jpeg(1600, 1200, 90, 7);
    let thumbs = make_thumbnails(&src, &ThumbSpec::default(), &Limits::default()).unwrap();
    let dims: Vec<_> = thumbs.iter().map(|t| (t.width, t.height)).collect();
    assert_eq!(dims, [(150, 113), (300, 225), (800, 600)]);
}

#[test]
fn qr_codes_are_well_formed() {
    let url = "https://shop.example.com/p/0123456789012";
    let png_bytes = qr_png(url, 4).unwrap();
    let img = image::load_from_memory_with_format(&png_bytes, image::ImageFormat::Png)
        .unwrap()
        .to_luma8();
    assert_eq!(img.width(), img.height());
    assert_eq!(img.width() % 4, 0);
    assert_eq!(img.get_pixel(0, 0)[0], 255, "quiet zone is white");
    assert_eq!(
        img.get_pixel(16, 16)[0],
        0,
        "finder pattern starts after the quiet zone"
    );
    let svg = qr_svg(url).unwrap();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{}",
        &svg[..40]
    );
    assert!(svg.contains("</svg>"));
    assert!(matches!(qr_png(url, 0), Err(MediaError::Invalid(_))));
    assert!(matches!(qr_svg(&"x".repeat(5000)), Err(MediaError::Invalid(_))));
}
