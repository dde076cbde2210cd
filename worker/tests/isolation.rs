//! The engine's child process per image: its deadline, its memory ceiling,
//! and memory estimates that bound what each op really uses.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::recipe::Op;
use common::{Limits, probe};
use image::ImageEncoder;
use serde_json::json;
use worker::isolate::{Isolation, RunError};

fn isolation(deadline: Duration) -> Isolation {
    Isolation {
        program: PathBuf::from(env!("CARGO_BIN_EXE_darkroom-worker")),
        deadline,
    }
}

fn photo(name: &str) -> Bytes {
    support::photo(name).into()
}

fn ops(value: serde_json::Value) -> Vec<Op> {
    serde_json::from_value(value).unwrap()
}

/// A noisy RGB JPEG, so that codecs do real work.
fn noisy_jpeg(width: u32, height: u32) -> Bytes {
    let mut state = 0x2545_f491_u32;
    let pixels: Vec<u8> = (0..width * height * 3)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            ((i % 251) as u8).wrapping_add((state & 0x3f) as u8)
        })
        .collect();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out.into()
}

#[tokio::test]
async fn child_past_its_deadline_is_killed_and_reported() {
    let started = Instant::now();
    let result = isolation(Duration::from_millis(300))
        .run(
            photo("rocket.jpg"),
            &ops(json!([
                {"op": "resize", "width": 6000, "height": 4000, "fit": "fill"},
                {"op": "blur", "sigma": 12.0}
            ])),
            &Limits::default(),
            1 << 30,
        )
        .await;
    assert!(matches!(result, Err(RunError::Deadline(_))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn child_over_its_memory_ceiling_fails_alone() {
    let result = isolation(Duration::from_secs(60))
        .run(
            photo("rocket.jpg"),
            &ops(json!([{"op": "resize", "width": 5000, "height": 5000, "fit": "fill"}])),
            &Limits::default(),
            48 << 20,
        )
        .await;
    let error = result.unwrap_err();
    assert!(matches!(error, RunError::OutOfMemory(_)), "{error:?}");
    assert!(error.to_string().contains("48 MiB"), "{error}");
}

#[tokio::test]
async fn engine_errors_come_back_as_such() {
    let result = isolation(Duration::from_secs(60))
        .run(
            Bytes::from_static(b"\x89PNG\r\n\x1a\nnot really"),
            &ops(json!([{"op": "flip", "axis": "vertical"}])),
            &Limits::default(),
            256 << 20,
        )
        .await;
    assert!(
        matches!(&result, Err(RunError::Engine(m)) if m.contains("corrupt")),
        "{result:?}"
    );
}

#[tokio::test]
async fn output_comes_back_whole_with_its_size() {
    let processed = isolation(Duration::from_secs(60))
        .run(
            photo("rocket.jpg"),
            &ops(json!([{"op": "thumbnail", "width": 64, "height": 64}])),
            &Limits::default(),
            256 << 20,
        )
        .await
        .unwrap();
    let img = image::load_from_memory(&processed.output.bytes).unwrap();
    assert_eq!((img.width(), img.height()), (64, 43));
    assert_eq!((processed.output.width, processed.output.height), (64, 43));
    assert!(processed.peak_memory > 0);
}

/// A noisy 16-bit RGBA PNG: the widest pixels the engine keeps.
fn noisy_png16(width: u32, height: u32) -> Bytes {
    let rgb = image::load_from_memory(&noisy_jpeg(width, height))
        .unwrap()
        .to_rgba16();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            &rgb.as_raw()
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect::<Vec<u8>>(),
            width,
            height,
            image::ExtendedColorType::Rgba16,
        )
        .unwrap();
    out.into()
}

/// The estimate is what a worker admits an image with and the ceiling its
/// child runs under: were it low, good images would fail.
#[tokio::test]
async fn memory_estimate_bounds_what_every_op_uses() {
    for input in [noisy_jpeg(3000, 2000), noisy_png16(1500, 1000)] {
        estimate_bounds_every_op(input).await;
    }
}

async fn estimate_bounds_every_op(input: Bytes) {
    let limits = Limits::default();
    let probe = probe::probe(&input, &limits).unwrap();
    let recipes = [
        json!([{"op": "thumbnail", "width": 256, "height": 256}]),
        json!([{"op": "resize", "width": 1600, "height": 1200}]),
        json!([{"op": "resize", "width": 4000, "height": 3000, "fit": "fill"}]),
        json!([{"op": "crop", "aspect": "16:9", "gravity": "smart"}]),
        json!([{"op": "rotate", "degrees": 90}]),
        json!([{"op": "flip", "axis": "horizontal"}]),
        json!([{"op": "recolor", "mode": "sepia"}]),
        json!([{"op": "recolor", "mode": "hue_rotate", "degrees": 90, "amount": 0.5}]),
        json!([{"op": "contrast", "amount": 0.3}]),
        json!([{"op": "brightness", "amount": 0.2}]),
        json!([{"op": "blur", "sigma": 8.0}]),
        json!([{"op": "sharpen", "amount": 1.0}]),
        json!([{"op": "red_eye"}]),
        json!([{"op": "teeth_whiten", "strength": 0.5}]),
        json!([{"op": "format", "format": "png"}]),
        json!([{"op": "format", "format": "webp"}]),
    ];
    for recipe in recipes {
        let ops = ops(recipe.clone());
        let estimate = probe::estimate(&probe, input.len() as u64, &ops, None);
        let processed = isolation(Duration::from_secs(120))
            .run(input.clone(), &ops, &limits, estimate.memory)
            .await
            .unwrap_or_else(|e| panic!("{probe:?} {recipe}: {e} (estimated {estimate:?})"));
        assert!(
            processed.peak_memory <= estimate.memory,
            "{probe:?} {recipe}: used {} MiB, estimated {} MiB",
            processed.peak_memory >> 20,
            estimate.memory >> 20
        );
    }
}
