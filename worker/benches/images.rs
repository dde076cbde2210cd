//! The image engine next to libvips and ImageMagick, side by side in one run.
//!
//! Input: a 12 MP JPEG made from testdata/coffee.png (scaled ×6.7, sensor-like
//! noise, quality 90, about 5 MB), written once to target/bench-data/.
//! 1. Thumbnail 256 px: `darkroom-worker apply` vs `vipsthumbnail -s 256` vs
//!    ImageMagick `convert -thumbnail`: median wall time over many runs, the
//!    ratio to libvips, and peak RSS.
//! 2. Every op on the same input: images/s/core (1 / CPU seconds) and peak
//!    RSS, next to ImageMagick for the ops it has.
//!
//! Run with `scripts/bench-images` (installs libvips-tools, imagemagick and
//! time with apt when missing). Each command is a separate process, as a
//! user of the CLI tools would run it.

use std::path::Path;
use std::process::Command;

#[path = "photo12mp.rs"]
mod photo12mp;
use photo12mp::{input, workspace};

const RUNS: usize = 15;

/// Wall seconds, CPU seconds and peak RSS (KiB) of one run, via /usr/bin/time.
fn measure(cmd: &[&str]) -> (f64, f64, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %U %S %M"])
        .args(cmd)
        .output()
        .expect("/usr/bin/time (apt install time)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let f: Vec<f64> = last
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(f.len(), 4, "unexpected /usr/bin/time output: {last}");
    (f[0], f[1] + f[2], f[3] as u64)
}

/// Wall time precise to the microsecond (`/usr/bin/time` rounds to 10 ms).
fn wall(cmd: &[&str]) -> f64 {
    let start = std::time::Instant::now();
    let status = Command::new(cmd[0]).args(&cmd[1..]).status().unwrap();
    assert!(status.success(), "{cmd:?}");
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn imagemagick() -> Option<&'static str> {
    [
        "/usr/bin/convert-im6.q16",
        "/usr/bin/magick",
        "/usr/bin/convert",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
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
        "input: {} ({:.1} MB, 4020×2680), {} runs per command, {} cores\n",
        input,
        std::fs::metadata(input).unwrap().len() as f64 / 1e6,
        RUNS,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let thumb_op = r#"{"op":"thumbnail","width":256,"height":256}"#;
    let (out_d, out_v, out_m) = (out("thumb-d.jpg"), out("thumb-v.jpg"), out("thumb-m.jpg"));
    let mut tools: Vec<(&str, Vec<&str>)> = vec![
        (
            "darkroom-worker apply (thumbnail 256)",
            vec![darkroom, "apply", "--op", thumb_op, input, &out_d],
        ),
        (
            "vipsthumbnail -s 256",
            vec!["vipsthumbnail", input, "-s", "256", "-o", &out_v],
        ),
    ];
    if let Some(im) = im {
        tools.push((
            "convert -thumbnail 256x256",
            vec![im, input, "-thumbnail", "256x256", &out_m],
        ));
    }
    let mut walls = vec![Vec::new(); tools.len()];
    let mut rss = vec![0u64; tools.len()];
    for _ in 0..RUNS {
        // Interleaved, so drift on the machine hits every tool alike.
        for (i, (_, cmd)) in tools.iter().enumerate() {
            walls[i].push(wall(cmd));
        }
    }
    for (i, (_, cmd)) in tools.iter().enumerate() {
        rss[i] = measure(cmd).2;
    }
    let vips = median(walls[1].clone());
    println!(
        "| thumbnail of a 12 MP JPEG | median wall ms | vs libvips | peak RSS MB |\n|---|---:|---:|---:|"
    );
    for (i, (name, _)) in tools.iter().enumerate() {
        let m = median(walls[i].clone());
        println!(
            "| {name} | {:.1} | {:.2}× | {:.1} |",
            m * 1000.0,
            m / vips,
            rss[i] as f64 / 1024.0
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
