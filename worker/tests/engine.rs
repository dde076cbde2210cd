//! The image engine on real photos and hostile input.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Limits;
use common::limits::LimitError;
use common::probe::ProbeError;
use common::recipe::{Op, OutputFormat};
use image::{ImageEncoder, ImageFormat};
use worker::engine::{EngineError, process};

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(name),
    )
    .unwrap()
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

#[test]
fn thumbnail_fits_box_keeps_aspect_and_format() {
    let out = process(
        &photo("rocket.jpg"),
        &[Op::Thumbnail {
            width: 256,
            height: 256,
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    assert_eq!((out.width, out.height), (256, 171));
    assert_eq!(out.format, OutputFormat::Jpeg);
    assert_eq!(image::guess_format(&out.bytes).unwrap(), ImageFormat::Jpeg);
    let img = decode(&out.bytes);
    assert_eq!((img.width(), img.height()), (256, 171));
}

#[test]
fn thumbnail_never_enlarges() {
    let out = process(
        &photo("chelsea.png"),
        &[Op::Thumbnail {
            width: 2000,
            height: 2000,
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    assert_eq!((out.width, out.height), (451, 300));
    assert_eq!(out.format, OutputFormat::Png);
}

#[test]
fn truncated_jpeg_is_a_corrupt_error_not_a_panic() {
    let full = photo("rocket.jpg");
    for cut in [10, 200, full.len() / 2] {
        let err = process(&full[..cut], &[], &Limits::default(), None).unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::Corrupt(_) | EngineError::Probe(ProbeError::Corrupt(_))
            ),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn text_is_not_an_image() {
    let err = process(b"<html>not an image</html>", &[], &Limits::default(), None).unwrap_err();
    assert!(matches!(err, EngineError::Probe(ProbeError::NotAnImage)));
}

/// A PNG header claiming 100000×100000 pixels (a decompression bomb).
fn png_bomb_header() -> Vec<u8> {
    let mut small = Vec::new();
    image::codecs::png::PngEncoder::new(Cursor::new(&mut small))
        .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
        .unwrap();
    // Rewrite IHDR's width and height, then its CRC.
    let mut bomb = small.clone();
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    bomb
}

#[test]
fn decompression_bomb_is_rejected_from_the_header_quickly() {
    let bomb = png_bomb_header();
    let start = Instant::now();
    let err = process(&bomb, &[], &Limits::default(), None).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Probe(ProbeError::TooLarge { width: 100_000, .. })
        ),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn too_many_bytes_is_rejected() {
    let limits = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    let err = process(&photo("rocket.jpg"), &[], &limits, None).unwrap_err();
    assert!(matches!(
        err,
        EngineError::Limit(LimitError::TooManyBytes { .. })
    ));
}

#[test]
fn format_op_picks_output_format() {
    let out = process(
        &photo("rocket.jpg"),
        &[
            Op::Thumbnail {
                width: 32,
                height: 32,
            },
            Op::Format {
                format: OutputFormat::Png,
                quality: None,
            },
        ],
        &Limits::default(),
        None,
    )
    .unwrap();
    assert_eq!(image::guess_format(&out.bytes).unwrap(), ImageFormat::Png);
}

fn encode_png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// A JPEG with an EXIF APP1 segment carrying `orientation`.
fn jpeg_with_orientation(img: &image::DynamicImage, orientation: u16) -> Vec<u8> {
    let mut plain = Vec::new();
    img.write_to(&mut Cursor::new(&mut plain), ImageFormat::Jpeg)
        .unwrap();
    // Big-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1.
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn exif_orientation_is_applied_before_ops_and_then_stripped() {
    // 60×20, left half red: rotated 90° clockwise it is 20×60, top half red.
    let img = image::RgbImage::from_fn(60, 20, |x, _| {
        if x < 30 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let jpeg = jpeg_with_orientation(&image::DynamicImage::ImageRgb8(img), 6);
    // Coordinates refer to the oriented image: the top 20×30 is all red.
    let out = process(
        &jpeg,
        &[Op::Crop {
            x: Some(0),
            y: Some(0),
            width: Some(20),
            height: Some(30),
            aspect: None,
            gravity: None,
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    assert_eq!((out.width, out.height), (20, 30));
    let decoded = decode(&out.bytes).to_rgb8();
    let mean_red = decoded.pixels().map(|p| f32::from(p[0])).sum::<f32>() / 600.0;
    assert!(
        mean_red > 200.0,
        "crop is not the red half: mean red {mean_red}"
    );
    assert!(
        !out.bytes.windows(4).any(|w| w == b"Exif"),
        "metadata was not stripped"
    );
}

#[test]
fn sixteen_bit_and_grayscale_inputs_are_processed() {
    let wide = image::DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(
        300,
        200,
        image::Rgb([40000u16, 20000, 1000]),
    ));
    let out = process(
        &encode_png(&wide),
        &[Op::Thumbnail {
            width: 30,
            height: 30,
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    assert_eq!((out.width, out.height), (30, 20));
    let p = decode(&out.bytes).to_rgb8().get_pixel(5, 5).0;
    assert!(
        (p[0] as i32 - 156).abs() <= 2 && (p[1] as i32 - 78).abs() <= 2,
        "{p:?}"
    );

    let gray =
        image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(100, 50, image::Luma([77])));
    let out = process(
        &encode_png(&gray),
        &[Op::Format {
            format: OutputFormat::Jpeg,
            quality: Some(90),
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    let p = decode(&out.bytes).to_luma8().get_pixel(10, 10).0[0];
    assert!((i32::from(p) - 77).abs() <= 2);
}

#[test]
fn transparency_becomes_white_in_jpeg_output() {
    let img = image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
        40,
        40,
        image::Rgba([0, 0, 0, 0]),
    ));
    let out = process(
        &encode_png(&img),
        &[Op::Format {
            format: OutputFormat::Jpeg,
            quality: None,
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    let p = decode(&out.bytes).to_rgb8().get_pixel(20, 20).0;
    assert!(
        p.iter().all(|&c| c >= 250),
        "transparent pixel is {p:?}, not white"
    );
}

#[test]
fn animated_gif_yields_its_first_frame() {
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        for color in [[0u8, 200, 0, 255], [200, 0, 0, 255]] {
            let frame = image::Frame::new(image::RgbaImage::from_pixel(16, 16, image::Rgba(color)));
            enc.encode_frame(frame).unwrap();
        }
    }
    let out = process(&gif, &[], &Limits::default(), None).unwrap();
    assert_eq!(out.format, OutputFormat::Png);
    let p = decode(&out.bytes).to_rgb8().get_pixel(8, 8).0;
    assert!(
        p[1] > 150 && p[0] < 50,
        "not the first (green) frame: {p:?}"
    );
}

/// A large JPEG (rocket.jpg scaled ×4 = 2560×1708) so that thumbnails take
/// the shrink-on-load path.
fn large_jpeg(orientation: Option<u16>) -> Vec<u8> {
    let img = image::load_from_memory(&photo("rocket.jpg")).unwrap();
    let big = img.resize_exact(2560, 1708, image::imageops::FilterType::Triangle);
    match orientation {
        Some(o) => jpeg_with_orientation(&big, o),
        None => {
            let mut out = Vec::new();
            big.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
                .unwrap();
            out
        }
    }
}

#[test]
fn shrink_on_load_matches_the_full_decode() {
    let jpeg = large_jpeg(None);
    let fast = process(
        &jpeg,
        &[Op::Thumbnail {
            width: 256,
            height: 256,
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    // The same pixels as PNG take the full-decode path.
    let png = encode_png(&image::load_from_memory(&jpeg).unwrap());
    let slow = process(
        &png,
        &[Op::Thumbnail {
            width: 256,
            height: 256,
        }],
        &Limits::default(),
        Some(OutputFormat::Jpeg),
    )
    .unwrap();
    assert_eq!((fast.width, fast.height), (256, 171));
    assert_eq!((slow.width, slow.height), (256, 171));
    let (a, b) = (decode(&fast.bytes).to_rgb8(), decode(&slow.bytes).to_rgb8());
    let diff: f64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| {
            (0..3)
                .map(|c| (f64::from(p[c]) - f64::from(q[c])).abs())
                .sum::<f64>()
        })
        .sum::<f64>()
        / (256.0 * 171.0 * 3.0);
    assert!(diff < 4.0, "mean difference {diff:.2} per channel");
}

#[test]
fn shrink_on_load_respects_exif_orientation() {
    let jpeg = large_jpeg(Some(6));
    let out = process(
        &jpeg,
        &[Op::Thumbnail {
            width: 256,
            height: 256,
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    assert_eq!((out.width, out.height), (171, 256));
    let cover = process(
        &jpeg,
        &[Op::Resize {
            width: 100,
            height: 300,
            fit: common::recipe::Fit::Cover,
        }],
        &Limits::default(),
        None,
    )
    .unwrap();
    assert_eq!((cover.width, cover.height), (100, 300));
}

#[test]
fn cmyk_jpeg_comes_out_in_the_right_colours() {
    let cmyk = photo("chelsea-cmyk.jpg");
    let out = process(&cmyk, &[], &Limits::default(), Some(OutputFormat::Png)).unwrap();
    let got = decode(&out.bytes).to_rgb8();
    let want = image::load_from_memory(&photo("chelsea.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(got.dimensions(), want.dimensions());
    let diff = got
        .pixels()
        .zip(want.pixels())
        .map(|(p, q)| {
            (0..3)
                .map(|c| (f64::from(p[c]) - f64::from(q[c])).abs())
                .sum::<f64>()
        })
        .sum::<f64>()
        / (f64::from(got.width() * got.height()) * 3.0);
    assert!(
        diff < 12.0,
        "mean difference {diff:.1} per channel: colours are off (inverted CMYK?)"
    );
}

/// Deterministic byte mutations of real files: truncations, bit flips and
/// overwritten runs. Every one must give an image or a clean error — never a
/// panic or a hang.
#[test]
fn mutated_files_never_panic() {
    let seeds = ["rocket.jpg", "chelsea.png", "chelsea-cmyk.jpg"].map(photo);
    let mut gif = Vec::new();
    image::codecs::gif::GifEncoder::new(&mut gif)
        .encode_frame(image::Frame::new(image::RgbaImage::from_pixel(
            8,
            8,
            image::Rgba([1, 2, 3, 255]),
        )))
        .unwrap();
    let seeds: Vec<Vec<u8>> = seeds.into_iter().chain([gif]).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let ops = [Op::Thumbnail {
        width: 64,
        height: 64,
    }];
    let limits = Limits::default();
    for round in 0..400 {
        let seed = &seeds[round % seeds.len()];
        let mut data = seed.clone();
        match next() % 3 {
            0 => data.truncate((next() as usize) % data.len()),
            1 => {
                for _ in 0..1 + next() % 8 {
                    let i = (next() as usize) % data.len();
                    data[i] ^= 1 << (next() % 8);
                }
            }
            _ => {
                // Early bytes hold the headers, where mutations bite hardest.
                let i = (next() as usize) % data.len().min(4096);
                let n = (1 + next() % 64) as usize;
                for b in data.iter_mut().skip(i).take(n) {
                    *b = next() as u8;
                }
            }
        }
        let _ = process(&data, &ops, &limits, None);
    }
}

/// chelsea.png re-expressed in Display P3 (a wider gamut), as a PNG that
/// carries the P3 profile.
fn chelsea_in_display_p3() -> Vec<u8> {
    use moxcms::{ColorProfile, Layout, TransformOptions};
    let srgb = image::load_from_memory(&photo("chelsea.png"))
        .unwrap()
        .to_rgb8();
    let p3 = ColorProfile::new_display_p3();
    let to_p3 = ColorProfile::new_srgb()
        .create_transform_8bit(Layout::Rgb, &p3, Layout::Rgb, TransformOptions::default())
        .unwrap();
    let mut pixels = vec![0u8; srgb.as_raw().len()];
    to_p3.transform(srgb.as_raw(), &mut pixels).unwrap();
    let mut png = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
    encoder.set_icc_profile(p3.encode().unwrap()).unwrap();
    encoder
        .write_image(
            &pixels,
            srgb.width(),
            srgb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    png
}

fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    a.pixels()
        .zip(b.pixels())
        .map(|(p, q)| {
            (0..3)
                .map(|c| (f64::from(p[c]) - f64::from(q[c])).abs())
                .sum::<f64>()
        })
        .sum::<f64>()
        / (f64::from(a.width() * a.height()) * 3.0)
}

#[test]
fn icc_profiles_are_converted_to_srgb() {
    let p3 = chelsea_in_display_p3();
    let original = image::load_from_memory(&photo("chelsea.png"))
        .unwrap()
        .to_rgb8();
    // Read as if it were sRGB, the P3 numbers are visibly off...
    let raw = image::load_from_memory(&p3).unwrap().to_rgb8();
    assert!(
        mean_abs_diff(&raw, &original) > 3.0,
        "the test image is not different enough"
    );
    // ...converted through its profile, they are the original colours again.
    let out = process(&p3, &[], &Limits::default(), Some(OutputFormat::Png)).unwrap();
    let converted = decode(&out.bytes).to_rgb8();
    let diff = mean_abs_diff(&converted, &original);
    assert!(diff < 1.5, "mean difference {diff:.2} after conversion");
}
