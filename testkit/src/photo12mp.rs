//! The 12 MP test photo of the benchmarks: testdata/coffee.png scaled ×6.7
//! with sensor-like noise, JPEG quality 90, about 5 MB; its noisy pixels are
//! also kept losslessly (PNG) for benches that re-encode them. Made once, in
//! target/bench-data/. Used by the image and upload benches.

use std::path::PathBuf;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageEncoder, RgbImage};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The photo's path, made on first use.
pub fn input() -> PathBuf {
    let dir = workspace().join("target/bench-data");
    let path = dir.join("coffee-12mp.jpg");
    if path.exists() && lossless_path().exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let src = image::open(workspace().join("testdata/coffee.png")).unwrap();
    let big = src
        .resize_exact(4020, 2680, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    // Deterministic Gaussian noise (xorshift + Box-Muller), sigma 10 levels.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let noisy = RgbImage::from_fn(big.width(), big.height(), |x, y| {
        let p = big.get_pixel(x, y);
        let n =
            (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos() * 10.0;
        image::Rgb(p.0.map(|c| (f64::from(c) + n).round().clamp(0.0, 255.0) as u8))
    });
    noisy.save(lossless_path()).unwrap();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(
            noisy.as_raw(),
            noisy.width(),
            noisy.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    std::fs::write(&path, out).unwrap();
    let _: DynamicImage = image::open(&path).unwrap();
    path
}

/// The same noisy pixels as a PNG (about 23 MB), made with [`input`].
#[allow(dead_code)] // the upload bench uses only the JPEG
pub fn lossless() -> PathBuf {
    input();
    lossless_path()
}

fn lossless_path() -> PathBuf {
    workspace().join("target/bench-data/coffee-12mp.png")
}
