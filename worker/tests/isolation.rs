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
use worker::isolate::{Isolation, Original, RunError, Share};
use worker::sandbox::Sandbox;

fn isolation(deadline: Duration) -> Isolation {
    Isolation {
        program: PathBuf::from(env!("CARGO_BIN_EXE_darkroom-worker")),
        deadline,
        sandbox: Sandbox::On,
    }
}

fn photo(name: &str) -> Bytes {
    support::photo(name).into()
}

fn original(bytes: &[u8]) -> Original {
    Original::from_bytes(bytes).unwrap()
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
            original(&photo("rocket.jpg")),
            &ops(json!([
                {"op": "resize", "width": 6000, "height": 4000, "fit": "fill"},
                {"op": "blur", "sigma": 12.0}
            ])),
            &Limits::default(),
            Share::memory(1 << 30),
        )
        .await;
    assert!(matches!(result, Err(RunError::Deadline(_))), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// The niceness of each thread of this process's engine children started
/// with `--nice <nice>` (other tests run children of their own meanwhile),
/// from `/proc` (field 19 of `stat`, counted after the command's closing
/// paren).
fn children_niceness(nice: u8) -> Vec<i64> {
    let flag = format!("--nice\0{nice}\0").into_bytes();
    let me = std::process::id().to_string();
    let field = |stat: &str, n: usize| {
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(n - 3).unwrap().to_owned()
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let dir = entry.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        if field(&stat, 4) != me || !cmdline.windows(flag.len()).any(|w| w == flag) {
            continue;
        }
        for task in std::fs::read_dir(dir.join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) {
                found.push(field(&stat, 19).parse().unwrap());
            }
        }
    }
    found
}

#[tokio::test]
async fn child_runs_at_the_niceness_it_is_given() {
    let isolation = isolation(Duration::from_secs(60));
    let slow = ops(json!([
        {"op": "resize", "width": 6000, "height": 4000, "fit": "fill"},
        {"op": "blur", "sigma": 12.0}
    ]));
    let share = Share {
        memory: 1 << 30,
        nice: 11,
    };
    let input = original(&photo("rocket.jpg"));
    let limits = Limits::default();
    let run = isolation.run(input, &slow, &limits, share);
    tokio::pin!(run);
    let started = Instant::now();
    let niceness = loop {
        tokio::select! {
            result = &mut run => panic!("the slow recipe finished first: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        let niceness = children_niceness(share.nice);
        if !niceness.is_empty() {
            break niceness;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no engine child seen"
        );
    };
    assert!(niceness.iter().all(|&n| n == 11), "{niceness:?}");
}

#[tokio::test]
async fn child_over_its_memory_ceiling_fails_alone() {
    let result = isolation(Duration::from_secs(60))
        .run(
            original(&photo("rocket.jpg")),
            &ops(json!([{"op": "resize", "width": 5000, "height": 5000, "fit": "fill"}])),
            &Limits::default(),
            Share::memory(48 << 20),
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
            original(b"\x89PNG\r\n\x1a\nnot really"),
            &ops(json!([{"op": "flip", "axis": "vertical"}])),
            &Limits::default(),
            Share::memory(256 << 20),
        )
        .await;
    assert!(
        matches!(&result, Err(RunError::Engine(m)) if m.contains("corrupt")),
        "{result:?}"
    );
}

/// A worker writes an original as its download arrives and probes it
/// through a reader: that must see what the whole file shows.
#[test]
fn an_original_written_in_chunks_reads_and_probes_as_its_bytes() {
    use std::io::Read;
    let limits = Limits::default();
    for file in [photo("rocket.jpg"), noisy_png16(64, 48)] {
        let mut original = Original::new().unwrap();
        for chunk in file.chunks(7_001) {
            original.write(chunk).unwrap();
        }
        assert_eq!(original.len(), file.len() as u64);
        let probed = probe::probe_reader(original.reader().unwrap(), &limits).unwrap();
        assert_eq!(probed, probe::probe(&file, &limits).unwrap());
        let mut back = Vec::new();
        original.reader().unwrap().read_to_end(&mut back).unwrap();
        assert!(back == file, "read back differs");
    }
}

#[tokio::test]
async fn an_empty_original_is_refused_as_no_image() {
    let result = isolation(Duration::from_secs(60))
        .run(
            original(b""),
            &ops(json!([{"op": "flip", "axis": "vertical"}])),
            &Limits::default(),
            Share::memory(256 << 20),
        )
        .await;
    assert!(
        matches!(&result, Err(RunError::Engine(m)) if m.contains("not a supported image")),
        "{result:?}"
    );
}

/// The worker hands its child a memory file; run by hand, the child reads
/// a pipe to its end instead.
#[test]
fn engine_child_run_by_hand_reads_its_image_from_a_pipe() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let task = json!({
        "ops": [{"op": "thumbnail", "width": 32, "height": 32}],
        "limits": Limits::default(),
        "default_format": null
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_darkroom-worker"))
        .args(["engine", "--memory", &(256u64 << 20).to_string()])
        .args(["--parent", &std::process::id().to_string()])
        .args(["--task", &task.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = photo("rocket.jpg");
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "{output:?}");
    let newline = output.stdout.iter().position(|&b| b == b'\n').unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout[..newline]).unwrap();
    assert_eq!(
        (
            reply["done"]["width"].as_u64(),
            reply["done"]["height"].as_u64()
        ),
        (Some(32), Some(21)),
        "{reply}"
    );
    let img = image::load_from_memory(&output.stdout[newline + 1..]).unwrap();
    assert_eq!((img.width(), img.height()), (32, 21));
}

#[tokio::test]
async fn output_comes_back_whole_with_its_size() {
    let processed = isolation(Duration::from_secs(60))
        .run(
            original(&photo("rocket.jpg")),
            &ops(json!([{"op": "thumbnail", "width": 64, "height": 64}])),
            &Limits::default(),
            Share::memory(256 << 20),
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
    for input in [
        noisy_jpeg(3000, 2000),
        noisy_png16(1500, 1000),
        noisy_avif(800, 600),
        // jxl-oxide renders in float planes: 28 bytes a pixel at its peak.
        photo("jxl/coffee-3mp.jxl"),
    ] {
        estimate_bounds_every_op(input).await;
    }
}

/// A noisy AVIF, made by the engine from a noisy PNG.
fn noisy_avif(width: u32, height: u32) -> Bytes {
    let avif = ops(json!([{"op": "format", "format": "avif", "speed": 9}]));
    let png = noisy_png16(width, height);
    worker::engine::process(&png, &avif, &Limits::default(), None)
        .unwrap()
        .bytes
        .into()
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
        json!([{"op": "format", "format": "webp", "lossless": true}]),
        json!([{"op": "format", "format": "jpeg", "progressive": true}]),
        json!([{"op": "format", "format": "avif"}]),
    ];
    for recipe in recipes {
        let ops = ops(recipe.clone());
        let estimate = probe::estimate(&probe, input.len() as u64, &ops, None);
        let processed = isolation(Duration::from_secs(120))
            .run(
                original(&input),
                &ops,
                &limits,
                Share::memory(estimate.memory),
            )
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
