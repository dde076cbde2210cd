//! The image engine on hostile input: truncated and mutated files, things
//! that are not images, and decompression bombs. Each must be a clean error
//! (or an image), never a panic or a hang. `process` catches panics, as
//! production needs, but reports them as `EngineError::Panicked`, which
//! fails these tests.

mod support;

use std::io::Cursor;
use std::time::{Duration, Instant};

use common::Limits;
use common::limits::LimitError;
use common::probe::ProbeError;
use image::ImageEncoder;
use support::{photo, refusal, thumbnail};
use worker::engine::{EngineError, Output, process};

#[test]
fn truncated_jpeg_is_a_corrupt_error_not_a_panic() {
    let full = photo("rocket.jpg");
    for cut in [10, 200, full.len() / 2] {
        let err = refusal(&full[..cut], &Limits::default());
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
    let err = refusal(b"<html>not an image</html>", &Limits::default());
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
    let err = refusal(&bomb, &Limits::default());
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
    let err = refusal(&photo("rocket.jpg"), &limits);
    assert!(matches!(
        err,
        EngineError::Limit(LimitError::TooManyBytes { .. })
    ));
}

/// Real files: JPEG, PNG, CMYK JPEG, and JPEG XL bare and in its container
/// (HEIF's, slower to decode, are among `scripts/fuzz`'s seeds).
const SEEDS: [&str; 5] = [
    "rocket.jpg",
    "chelsea.png",
    "chelsea-cmyk.jpg",
    "jxl/rocket.jxl",
    "jxl/rocket-from-jpeg.jxl",
];

/// Deterministic byte mutations of real files: truncations, bit flips and
/// overwritten runs. Every one must give an image or a clean error — never a
/// panic or a hang.
#[test]
fn mutated_files_never_panic() {
    let seeds = SEEDS.map(photo);
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
    let ops = [thumbnail(64, 64)];
    let limits = Limits::default();
    let mut panicked = Vec::new();
    for round in 0..600 {
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
        if let Err(EngineError::Panicked(what)) = process(&data, &ops, &limits, None) {
            panicked.push(format!("round {round}: {what}"));
        }
    }
    assert!(panicked.is_empty(), "the engine panicked: {panicked:#?}");
}

/// The same seeds, cut at every length up to their first 2 KiB (where the
/// headers are) and then every 997th: a decoder reading past what it was
/// given is the likeliest panic.
#[test]
fn files_cut_anywhere_never_panic() {
    let mut panicked = Vec::new();
    for name in SEEDS {
        let full = photo(name);
        let cuts = (0..full.len().min(2048)).chain((2048..full.len()).step_by(997));
        for cut in cuts {
            if let Err(EngineError::Panicked(what)) = outcome(&full[..cut]) {
                panicked.push(format!("{name} cut at {cut}: {what}"));
            }
        }
    }
    assert!(panicked.is_empty(), "the engine panicked: {panicked:#?}");
}

fn outcome(input: &[u8]) -> Result<Output, EngineError> {
    process(input, &[thumbnail(64, 64)], &Limits::default(), None)
}
