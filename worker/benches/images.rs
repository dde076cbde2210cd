//! The image engine next to libvips and ImageMagick, side by side in one run.
//!
//! Input: a 12 MP photo made from testdata/coffee.png (scaled ×6.7,
//! sensor-like noise), written once to target/bench-data/: a quality-90 JPEG
//! (4:2:0, about 5 MB), and the same pixels in every other kind a user
//! brings, encoded by ImageMagick (JPEG 4:4:4, 4:2:2, 4:4:0, grey, CMYK,
//! progressive; PNG; lossy WebP).
//! 1. Thumbnail 256 px of each kind: `darkroom-worker apply` vs
//!    `vipsthumbnail -s 256`: median wall time over many runs, the ratio to
//!    libvips, and peak RSS.
//! 2. Every op on the JPEG: images/s/core (1 / CPU seconds) and peak RSS,
//!    next to ImageMagick for the ops it has.
//!
//! Run with `scripts/bench-images` (installs libvips-tools, imagemagick and
//! time with apt when missing). Each command is a separate process, as a
//! user of the CLI tools would run it.

use std::path::Path;
use std::process::Command;

#[path = "timing.rs"]
mod timing;
use testkit::photo12mp::{input, lossless, workspace};
use timing::{measure, median, wall};

const RUNS: usize = 15;

fn imagemagick() -> Option<&'static str> {
    [
        "/usr/bin/convert-im6.q16",
        "/usr/bin/magick",
        "/usr/bin/convert",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

/// The kinds of input the thumbnail table has a row for: a label, a file
/// name under target/bench-data/kinds/ and ImageMagick's arguments to make
/// it from the lossless photo (`None`: the 4:2:0 JPEG or the PNG itself).
const KINDS: &[(&str, &str, Option<&[&str]>)] = &[
    ("JPEG 4:2:0", "", None),
    (
        "JPEG 4:4:4",
        "444.jpg",
        Some(&["-quality", "90", "-sampling-factor", "1x1"]),
    ),
    (
        "JPEG 4:2:2",
        "422.jpg",
        Some(&["-quality", "90", "-sampling-factor", "2x1"]),
    ),
    (
        "JPEG 4:4:0",
        "440.jpg",
        Some(&["-quality", "90", "-sampling-factor", "1x2"]),
    ),
    (
        "JPEG grey",
        "grey.jpg",
        Some(&["-quality", "90", "-colorspace", "Gray"]),
    ),
    (
        "JPEG CMYK",
        "cmyk.jpg",
        Some(&["-quality", "90", "-colorspace", "CMYK"]),
    ),
    (
        "JPEG progressive 4:2:0",
        "progressive-420.jpg",
        Some(&[
            "-quality",
            "90",
            "-sampling-factor",
            "2x2",
            "-interlace",
            "JPEG",
        ]),
    ),
    (
        "JPEG progressive 4:4:4",
        "progressive-444.jpg",
        Some(&[
            "-quality",
            "90",
            "-sampling-factor",
            "1x1",
            "-interlace",
            "JPEG",
        ]),
    ),
    ("PNG RGB", "png", None),
    ("WebP lossy q90", "photo.webp", Some(&["-quality", "90"])),
];

/// Each kind's label and file, made with ImageMagick on first use.
fn kinds(im: &str) -> Vec<(&'static str, String)> {
    let dir = workspace().join("target/bench-data/kinds");
    std::fs::create_dir_all(&dir).unwrap();
    let source = lossless();
    KINDS
        .iter()
        .map(|&(label, file, args)| {
            let path = match (file, args) {
                ("", _) => input(),
                (_, None) => source.clone(),
                (file, Some(args)) => {
                    let path = dir.join(file);
                    if !path.exists() {
                        let status = Command::new(im)
                            .arg(&source)
                            .args(args)
                            .arg(&path)
                            .status()
                            .unwrap();
                        assert!(status.success(), "{im} {args:?} {file}");
                    }
                    path
                }
            };
            (label, path.to_str().unwrap().to_owned())
        })
        .collect()
}

/// Every op the second table measures: its name, the darkroom op, and the
/// ImageMagick arguments for the same (`-` where it has no such op).
const OPS: &str = r#"
thumbnail 256           | {"op":"thumbnail","width":256,"height":256}              | -thumbnail 256x256
resize 1600×1200 inside | {"op":"resize","width":1600,"height":1200}               | -resize 1600x1200
crop 1000×1000          | {"op":"crop","x":100,"y":100,"width":1000,"height":1000} | -crop 1000x1000+100+100
crop 16:9 smart         | {"op":"crop","aspect":"16:9","gravity":"smart"}          | -
rotate 90               | {"op":"rotate","degrees":90}                             | -rotate 90
flip horizontal         | {"op":"flip","axis":"horizontal"}                        | -flop
grayscale               | {"op":"recolor","mode":"grayscale"}                      | -colorspace Gray
sepia                   | {"op":"recolor","mode":"sepia"}                          | -sepia-tone 80%
hue rotate 90°          | {"op":"recolor","mode":"hue_rotate","degrees":90}        | -modulate 100,100,150
contrast +0.3           | {"op":"contrast","amount":0.3}                           | -brightness-contrast 0x30
brightness +0.2         | {"op":"brightness","amount":0.2}                         | -brightness-contrast 20x0
blur σ=2                | {"op":"blur","sigma":2.0}                                | -blur 0x2
sharpen                 | {"op":"sharpen","amount":1.0}                            | -sharpen 0x1
red eye (auto)          | {"op":"red_eye"}                                         | -
teeth whiten (auto)     | {"op":"teeth_whiten","strength":0.6}                     | -
format webp             | {"op":"format","format":"webp"}                          | -
"#;

/// The rows of [`OPS`].
fn ops() -> impl Iterator<Item = (&'static str, &'static str, Option<Vec<&'static str>>)> {
    OPS.lines().filter(|l| !l.is_empty()).map(|line| {
        let [name, op, im] = <[&str; 3]>::try_from(line.split(" | ").collect::<Vec<_>>())
            .unwrap_or_else(|_| panic!("not name | op | arguments: {line}"));
        let im = (im.trim() != "-").then(|| im.split_whitespace().collect());
        (name.trim(), op.trim(), im)
    })
}

fn main() {
    let input = input();
    let input = input.to_str().unwrap();
    let out_dir = workspace().join("target/bench-data/out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = |name: &str| out_dir.join(name).to_str().unwrap().to_owned();
    let darkroom = env!("CARGO_BIN_EXE_darkroom-worker");
    let im = imagemagick();
    println!(
        "input: {} (4020×2680) and its kinds, {} runs per command, {} cores\n",
        input,
        RUNS,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let thumb_op = r#"{"op":"thumbnail","width":256,"height":256}"#;
    let (out_d, out_v) = (out("thumb-d.jpg"), out("thumb-v.jpg"));
    println!(
        "| thumbnail 256 of a 12 MP … | MB | darkroom ms | vipsthumbnail ms | vs libvips | darkroom peak RSS MB | libvips peak RSS MB |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (label, file) in kinds(im.expect("ImageMagick makes the inputs")) {
        let tools = [
            vec![darkroom, "apply", "--op", thumb_op, &file, &out_d],
            vec!["vipsthumbnail", &file, "-s", "256", "-o", &out_v],
        ];
        let mut walls = [Vec::new(), Vec::new()];
        for _ in 0..RUNS {
            // Interleaved, so drift on the machine hits both alike.
            for (i, cmd) in tools.iter().enumerate() {
                walls[i].push(wall(cmd));
            }
        }
        let [ours, vips] = walls.map(median);
        let [our_rss, vips_rss] = [&tools[0], &tools[1]].map(|cmd| measure(cmd).2 as f64 / 1024.0);
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} | {:.2}× | {our_rss:.1} | {vips_rss:.1} |",
            std::fs::metadata(&file).unwrap().len() as f64 / 1e6,
            ours * 1000.0,
            vips * 1000.0,
            ours / vips,
        );
    }

    println!(
        "\n| op on 12 MP JPEG → JPEG | darkroom img/s/core | darkroom peak RSS MB | ImageMagick img/s/core | ImageMagick peak RSS MB |\n|---|---:|---:|---:|---:|"
    );
    const OP_RUNS: usize = 3;
    for (name, op, im_args) in ops() {
        let target = out("op-d.jpg");
        let cmd = [darkroom, "apply", "--op", op, input, &target];
        let runs: Vec<_> = (0..OP_RUNS).map(|_| measure(&cmd)).collect();
        let cpu = median(runs.iter().map(|r| r.1.max(0.01)).collect());
        let peak = runs.iter().map(|r| r.2).max().unwrap();
        let theirs = match (im, im_args) {
            (Some(im), Some(args)) => {
                let target = out("op-m.jpg");
                let mut cmd = vec![im, input];
                cmd.extend(args);
                cmd.push(&target);
                let runs: Vec<_> = (0..OP_RUNS).map(|_| measure(&cmd)).collect();
                let cpu = median(runs.iter().map(|r| r.1.max(0.01)).collect());
                let peak = runs.iter().map(|r| r.2).max().unwrap();
                format!("{:.2} | {:.0}", 1.0 / cpu, peak as f64 / 1024.0)
            }
            _ => "— | —".into(),
        };
        println!(
            "| {name} | {:.2} | {:.0} | {theirs} |",
            1.0 / cpu,
            peak as f64 / 1024.0
        );
    }
}
