//! What the worker's test files share: the photos of testdata/, the engine
//! run under the default limits, and what its output decodes to.
//!
//! Each test file is a crate of its own and uses only some of these.

#![allow(dead_code)]

use std::io::Cursor;
use std::path::PathBuf;

use common::Limits;
use common::recipe::{Op, OutputFormat};
use image::{DynamicImage, ImageFormat, RgbImage};
use libheif_rs::{
    Channel, ColorPrimaries, ColorProfileNCLX, ColorSpace, CompressionFormat, EncoderQuality,
    EncodingOptions, HeifContext, LibHeif, RgbChroma,
};
use worker::engine::{EngineError, Output, process};

/// The path of a file of the workspace's testdata/.
pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
}

/// The bytes of a photo of testdata/.
pub fn photo(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).unwrap()
}

pub fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

/// `ops` as a recipe gives them, e.g. `[{"op": "rotate", "degrees": 90}]`.
pub fn ops(json: serde_json::Value) -> Vec<Op> {
    let ops = json.as_array().expect("a JSON array of ops");
    ops.iter()
        .enumerate()
        .map(|(i, v)| Op::from_json(v, &format!("ops[{i}]")).unwrap())
        .collect()
}

pub fn thumbnail(width: u32, height: u32) -> Op {
    Op::Thumbnail { width, height }
}

/// Runs `ops` on `input` under the default limits; the output keeps the
/// input's format unless an op picks one.
pub fn run(input: &[u8], ops: &[Op]) -> Output {
    process(input, ops, &Limits::default(), None).unwrap()
}

/// Like [`run`], with `format` for the output unless an op picks one.
pub fn run_as(input: &[u8], ops: &[Op], format: OutputFormat) -> Output {
    process(input, ops, &Limits::default(), Some(format)).unwrap()
}

/// The error the engine refuses `input` with, under `limits`, before any op.
pub fn refusal(input: &[u8], limits: &Limits) -> EngineError {
    process(input, &[], limits, None).unwrap_err()
}

pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// The mean absolute difference per channel of two images of one size.
pub fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
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

/// A 16×16 AVIF of one colour, `rgb`, whose `nclx` box names `primaries`
/// and sRGB's transfer function.
pub fn avif_with_primaries(rgb: [u8; 3], primaries: ColorPrimaries) -> Vec<u8> {
    let side = 16;
    let mut image = libheif_rs::Image::new(side, side, ColorSpace::Rgb(RgbChroma::Rgb)).unwrap();
    image
        .create_plane(Channel::Interleaved, side, side, 8)
        .unwrap();
    let plane = image.planes_mut().interleaved.unwrap();
    for y in 0..side as usize {
        for x in 0..side as usize {
            plane.data[y * plane.stride + x * 3..][..3].copy_from_slice(&rgb);
        }
    }
    let mut nclx = ColorProfileNCLX::new().unwrap();
    nclx.set_color_primaries(primaries);
    image.set_color_profile_nclx(&nclx).unwrap();
    let lib = LibHeif::new();
    let mut encoder = lib.encoder_for_format(CompressionFormat::Av1).unwrap();
    encoder.set_quality(EncoderQuality::LossLess).unwrap();
    // libheif leaves an RGB image's nclx box out unless told otherwise.
    let mut options = EncodingOptions::new().unwrap();
    options.set_mac_os_compatibility_workaround_no_nclx_profile(false);
    let mut context = HeifContext::new().unwrap();
    context
        .encode_image(&image, &mut encoder, Some(options))
        .unwrap();
    context.write_to_bytes().unwrap()
}
