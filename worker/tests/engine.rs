//! The image engine on real photos and hostile input.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use image::{ImageEncoder, ImageFormat};
use worker::engine::{EngineError, Limits, process};
use worker::recipe::{Op, OutputFormat};

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
            matches!(err, EngineError::Corrupt(_)),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn text_is_not_an_image() {
    let err = process(b"<html>not an image</html>", &[], &Limits::default(), None).unwrap_err();
    assert!(matches!(err, EngineError::NotAnImage));
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
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    bomb
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn decompression_bomb_is_rejected_from_the_header_quickly() {
    let bomb = png_bomb_header();
    let start = Instant::now();
    let err = process(&bomb, &[], &Limits::default(), None).unwrap_err();
    assert!(
        matches!(err, EngineError::TooLarge { width: 100_000, .. }),
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
    assert!(matches!(err, EngineError::TooManyBytes { .. }));
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
