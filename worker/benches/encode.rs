//! Darkroom's encoders next to libvips', side by side in one run: bytes at
//! equal quality, encode time, peak RSS; and HEIC/AVIF thumbnails next to
//! `vipsthumbnail`.
//!
//! Inputs: the four photos of testdata/, a 12 MP photo made from coffee.png
//! (see `photo12mp`), and two phone photos libvips makes of it: a HEIC as
//! an iPhone saves one (HEVC, quality 80) and a Display P3 JPEG with its
//! profile (quality 92). Each is first made at most 1600 px wide and in sRGB
//! by libvips and stored lossless (PNG): both encoders get the same pixels, and
//! quality is measured against them, with SSIMULACRA2 (the `ssimulacra2`
//! crate; 90 is visually lossless, 70 high quality, 50 medium) and PSNR.
//!
//! Equal quality: libvips encodes at the format's default quality (JPEG 85,
//! WebP 80, AVIF 65, Darkroom's defaults, given to both); Darkroom sweeps
//! its quality and the bytes it needs for libvips' SSIMULACRA2 score are
//! interpolated linearly between the two sweep points around that score.
//! The size ratio is those bytes over libvips' bytes, summed over photos.
//!
//! Each encode is a process of its own (`darkroom-worker apply` and
//! `vips copy`), each reading the same PNG, timed as a user of either CLI
//! would time it. Run with `scripts/bench-encode`.

use std::path::{Path, PathBuf};

use ssimulacra2::{ColorPrimaries, Rgb, TransferCharacteristic, compute_frame_ssimulacra2};

#[path = "timing.rs"]
mod timing;
use testkit::photo12mp::{input, workspace};
use timing::{measure, median, wall};

const RUNS: usize = 5;

/// (label, extension, default quality, the sweep, libvips' save options).
const FORMATS: &[(&str, &str, u8, &[u8], &str)] = &[
    (
        "JPEG",
        "jpg",
        85,
        &[60, 70, 75, 80, 85, 88, 91, 94],
        "optimize_coding,strip",
    ),
    (
        "WebP",
        "webp",
        80,
        &[50, 60, 70, 75, 80, 85, 90, 95],
        "strip",
    ),
    (
        "AVIF",
        "avif",
        65,
        &[40, 50, 55, 60, 65, 70, 75, 85],
        "strip",
    ),
];

/// Runs `cmd`, untimed.
fn run(cmd: &[&str]) {
    wall(cmd);
}

/// An encoded file's pixels as 8-bit RGB, decoded by libvips.
fn pixels(path: &Path, dir: &Path) -> image::RgbImage {
    let png = dir.join("decoded.png");
    run(&[
        "vips",
        "copy",
        path.to_str().unwrap(),
        png.to_str().unwrap(),
    ]);
    image::open(&png).unwrap().to_rgb8()
}

fn linear(img: &image::RgbImage) -> Rgb {
    let data = img
        .pixels()
        .map(|p| p.0.map(|c| f32::from(c) / 255.0))
        .collect();
    Rgb::new(
        data,
        img.width() as usize,
        img.height() as usize,
        TransferCharacteristic::SRGB,
        ColorPrimaries::BT709,
    )
    .unwrap()
}

/// SSIMULACRA2 and PSNR of `img` against `reference`.
fn quality(reference: &image::RgbImage, img: &image::RgbImage) -> (f64, f64) {
    let score = compute_frame_ssimulacra2(linear(reference), linear(img)).unwrap();
    let mse = reference
        .as_raw()
        .iter()
        .zip(img.as_raw())
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum::<f64>()
        / reference.as_raw().len() as f64;
    (score, 10.0 * (255.0 * 255.0 / mse).log10())
}

struct Point {
    quality: u8,
    bytes: u64,
    score: f64,
    psnr: f64,
}

/// Bytes at `score` on a curve of points, interpolated between the two
/// around it (or the nearest end, flagged, when the sweep does not reach).
fn bytes_at(curve: &[Point], score: f64) -> (f64, bool) {
    let mut sorted: Vec<&Point> = curve.iter().collect();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.score <= score && score <= b.score {
            let t = if b.score > a.score {
                (score - a.score) / (b.score - a.score)
            } else {
                0.0
            };
            return (a.bytes as f64 + t * (b.bytes as f64 - a.bytes as f64), true);
        }
    }
    let nearest = if score < sorted[0].score {
        sorted[0]
    } else {
        sorted[sorted.len() - 1]
    };
    (nearest.bytes as f64, false)
}

/// The `format` op at `quality`, as `darkroom-worker apply --op` takes it.
fn format_op(format: &str, quality: u8) -> String {
    format!(r#"{{"op":"format","format":"{format}","quality":{quality}}}"#)
}

/// The photos, each at most 1600 px wide, as PNGs made by libvips.
fn references(dir: &Path) -> Vec<(String, PathBuf)> {
    let testdata = workspace().join("testdata");
    let mut sources: Vec<(String, PathBuf)> =
        ["rocket.jpg", "coffee.png", "chelsea.png", "astronaut.png"]
            .iter()
            .map(|n| (n.to_string(), testdata.join(n)))
            .collect();
    sources.push(("coffee 12 MP".into(), input()));
    sources.extend(phone_photos(dir));
    sources
        .into_iter()
        .map(|(label, path)| {
            let png = dir.join(format!("{}.png", label.replace(' ', "-")));
            let out = format!("{}[strip]", png.display());
            run(&[
                "vips",
                "thumbnail",
                path.to_str().unwrap(),
                &out,
                "1600",
                "--size",
                "down",
                "--export-profile",
                "srgb",
            ]);
            (label, png)
        })
        .collect()
}

/// The 12 MP photo as phones save it: a HEIC, and a JPEG in Display P3
/// with its profile (libvips' built-in `p3`).
fn phone_photos(dir: &Path) -> Vec<(String, PathBuf)> {
    let photo = input();
    let photo = photo.to_str().unwrap();
    let heic = dir.join("phone-12mp.heic");
    if !heic.exists() {
        let target = format!("{}[compression=hevc,Q=80,strip]", heic.display());
        run(&["vips", "copy", photo, &target]);
    }
    let p3 = dir.join("phone-12mp-p3.jpg");
    if !p3.exists() {
        let target = format!("{}[Q=92]", p3.display());
        run(&[
            "vips",
            "icc_transform",
            photo,
            &target,
            "p3",
            "--input-profile",
            "srgb",
        ]);
    }
    vec![
        ("HEIC 12 MP".into(), heic),
        ("Display P3 JPEG 12 MP".into(), p3),
    ]
}

fn encoders(darkroom: &str, dir: &Path, refs: &[(String, PathBuf)]) {
    println!(
        "| format (quality) | libvips bytes | Darkroom bytes at libvips' SSIMULACRA2 | size vs libvips | libvips SSIMULACRA2 / PSNR | Darkroom at the same quality: SSIMULACRA2 / PSNR | encode ms libvips | encode ms Darkroom | time vs libvips | peak RSS MB libvips / Darkroom |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for &(label, ext, default_q, sweep, vips_options) in FORMATS {
        let format = match ext {
            "jpg" => "jpeg",
            other => other,
        };
        let (mut vips_bytes, mut ours_bytes, mut reached) = (0.0, 0.0, true);
        let (mut vips_q, mut ours_q) = ((0.0, 0.0), (0.0, 0.0));
        let (mut vips_ms, mut ours_ms) = (Vec::new(), Vec::new());
        let (mut vips_rss, mut ours_rss) = (0u64, 0u64);
        for (_, reference) in refs {
            let ref_str = reference.to_str().unwrap();
            let ref_pixels = image::open(reference).unwrap().to_rgb8();
            let vips_out = dir.join(format!("vips.{ext}"));
            let vips_target = format!("{}[Q={default_q},{vips_options}]", vips_out.display());
            let ours_out = dir.join(format!("ours.{ext}"));
            let ours_str = ours_out.to_str().unwrap();
            let vips_cmd = ["vips", "copy", ref_str, &vips_target];
            let op = format_op(format, default_q);
            let ours_cmd = [darkroom, "apply", "--op", &op, ref_str, ours_str];
            for _ in 0..RUNS {
                vips_ms.push(wall(&vips_cmd) * 1e3);
                ours_ms.push(wall(&ours_cmd) * 1e3);
            }
            vips_rss = vips_rss.max(measure(&vips_cmd).2);
            ours_rss = ours_rss.max(measure(&ours_cmd).2);
            let v_bytes = std::fs::metadata(&vips_out).unwrap().len();
            let (v_score, v_psnr) = quality(&ref_pixels, &pixels(&vips_out, dir));
            let (o_score, o_psnr) = quality(&ref_pixels, &pixels(&ours_out, dir));
            let curve: Vec<Point> = sweep
                .iter()
                .map(|&q| {
                    run(&[
                        darkroom,
                        "apply",
                        "--op",
                        &format_op(format, q),
                        ref_str,
                        ours_str,
                    ]);
                    let (score, psnr) = quality(&ref_pixels, &pixels(&ours_out, dir));
                    let bytes = std::fs::metadata(&ours_out).unwrap().len();
                    Point {
                        quality: q,
                        bytes,
                        score,
                        psnr,
                    }
                })
                .collect();
            let (bytes, inside) = bytes_at(&curve, v_score);
            eprintln!(
                "{label} {}: libvips {v_bytes} B at {v_score:.1}; Darkroom {bytes:.0} B; sweep {:?}",
                reference.display(),
                curve
                    .iter()
                    .map(|p| (
                        p.quality,
                        p.bytes,
                        (p.score * 10.0).round() / 10.0,
                        (p.psnr * 10.0).round() / 10.0
                    ))
                    .collect::<Vec<_>>()
            );
            vips_bytes += v_bytes as f64;
            ours_bytes += bytes;
            reached &= inside;
            vips_q = (vips_q.0 + v_score, vips_q.1 + v_psnr);
            ours_q = (ours_q.0 + o_score, ours_q.1 + o_psnr);
        }
        let n = refs.len() as f64;
        let (v_med, o_med) = (median(vips_ms), median(ours_ms));
        println!(
            "| {label} ({default_q}) | {vips_bytes:.0} | {ours_bytes:.0}{} | **{:.2}×** | {:.1} / {:.1} dB | {:.1} / {:.1} dB | {v_med:.0} | {o_med:.0} | {:.2}× | {:.0} / {:.0} |",
            if reached { "" } else { " (sweep end)" },
            ours_bytes / vips_bytes,
            vips_q.0 / n,
            vips_q.1 / n,
            ours_q.0 / n,
            ours_q.1 / n,
            o_med / v_med,
            vips_rss as f64 / 1024.0,
            ours_rss as f64 / 1024.0,
        );
    }
}

/// Thumbnails of a 12 MP HEIC and AVIF (made by libvips from the 12 MP
/// photo), against `vipsthumbnail`.
fn thumbnails(darkroom: &str, dir: &Path) {
    let photo = input();
    println!(
        "\n| thumbnail 256 of a 12 MP … | darkroom ms | vipsthumbnail ms | vs libvips |\n|---|---:|---:|---:|"
    );
    for (label, ext, compression) in [("HEIC", "heic", "hevc"), ("AVIF", "avif", "av1")] {
        let file = dir.join(format!("coffee-12mp.{ext}"));
        if !file.exists() {
            let target = format!("{}[compression={compression},Q=50,strip]", file.display());
            run(&["vips", "copy", photo.to_str().unwrap(), &target]);
        }
        let file = file.to_str().unwrap();
        let out_d = dir.join("thumb-d.jpg");
        let out_v = dir.join("thumb-v.jpg");
        let op = r#"{"op":"thumbnail","width":256,"height":256}"#;
        let (mut d, mut v) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            d.push(wall(&[darkroom, "apply", "--op", op, file, out_d.to_str().unwrap()]) * 1e3);
            v.push(
                wall(&[
                    "vipsthumbnail",
                    file,
                    "-s",
                    "256",
                    "-o",
                    out_v.to_str().unwrap(),
                ]) * 1e3,
            );
        }
        let (d, v) = (median(d), median(v));
        println!("| {label} | {d:.0} | {v:.0} | **{:.2}×** |", d / v);
    }
}

fn main() {
    let dir = workspace().join("target/bench-data/encode");
    std::fs::create_dir_all(&dir).unwrap();
    let darkroom = env!("CARGO_BIN_EXE_darkroom-worker");
    let refs = references(&dir);
    println!(
        "{} photos at most 1600 px wide, {RUNS} runs per encode, {} cores\n",
        refs.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    encoders(darkroom, &dir, &refs);
    thumbnails(darkroom, &dir);
}
