//! Shrink-on-load on every kind of input a user brings: each JPEG layout as
//! ImageMagick writes it (testdata/layouts/), a YCCK JPEG, PNGs of each
//! colour type, and lossy and lossless WebPs. Each must take the reduced decode (the thumbnail is done
//! within `decode`) and give the picture a full decode and resize gives:
//! the same size and the same pixel statistics.

mod support;

use common::recipe::OutputFormat;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, RgbImage};
use support::{decode, encode, mean_abs_diff, photo, run_as, thumbnail};
use worker::engine::Output;

/// rocket.jpg scaled ×2 (1280×854), which the layout fixtures were made
/// from: a 256 px thumbnail of it is a fourfold shrink.
const SIZE: (u32, u32) = (1280, 854);
const THUMB: (u32, u32) = (256, 171);

fn layout(name: &str) -> Vec<u8> {
    photo(&format!("layouts/rocket-{name}"))
}

/// Whether the first op was applied while decoding, not after it.
fn shrunk_on_load(out: &Output) -> bool {
    !out.timings.iter().any(|(step, _)| *step == "thumbnail")
}

/// What a full decode of `input`, resized to `size`, looks like.
fn reference(input: &[u8], (w, h): (u32, u32)) -> RgbImage {
    let full = decode(input);
    assert_eq!(full.width(), SIZE.0);
    full.resize_exact(w, h, FilterType::Lanczos3).to_rgb8()
}

/// The mean and the standard deviation of each channel.
type Stats = ([f64; 3], [f64; 3]);

fn stats(img: &RgbImage) -> Stats {
    let n = f64::from(img.width() * img.height());
    let (mut sums, mut squares) = ([0.0; 3], [0.0; 3]);
    for p in img.pixels() {
        for c in 0..3 {
            let v = f64::from(p[c]);
            sums[c] += v;
            squares[c] += v * v;
        }
    }
    let means = sums.map(|s| s / n);
    let mut sds = [0.0; 3];
    for c in 0..3 {
        sds[c] = (squares[c] / n - means[c] * means[c]).sqrt();
    }
    (means, sds)
}

/// Thumbnails `input` to fit `size` and checks the result against a full
/// decode and against the statistics it had when this test was written.
fn thumbnail_matches(what: &str, input: &[u8], size: (u32, u32), golden: Stats) {
    let out = run_as(input, &[thumbnail(size.0, size.0)], OutputFormat::Png);
    assert!(shrunk_on_load(&out), "{what}: decoded whole");
    assert_eq!((out.width, out.height), size, "{what}");
    let got = decode(&out.bytes).to_rgb8();
    let diff = mean_abs_diff(&got, &reference(input, size));
    assert!(diff < 3.0, "{what}: mean difference {diff:.2} per channel");
    let (means, sds) = stats(&got);
    for c in 0..3 {
        assert!(
            (means[c] - golden.0[c]).abs() < 1.0 && (sds[c] - golden.1[c]).abs() < 1.0,
            "{what}: channel {c} has mean {:.2} and deviation {:.2}, was {:.2} and {:.2}",
            means[c],
            sds[c],
            golden.0[c],
            golden.1[c]
        );
    }
}

#[test]
fn every_jpeg_layout_shrinks_on_load_to_the_same_picture() {
    for (name, golden) in [
        ("444.jpg", ([51.97, 60.82, 81.83], [35.22, 28.85, 27.86])),
        ("422.jpg", ([51.95, 60.82, 81.81], [35.06, 28.85, 27.49])),
        ("440.jpg", ([52.10, 60.72, 82.01], [35.14, 28.83, 27.66])),
        ("420.jpg", ([51.96, 60.82, 81.80], [35.21, 28.86, 27.83])),
        ("gray.jpg", ([60.45, 60.45, 60.45], [29.25, 29.25, 29.25])),
        ("cmyk.jpg", ([52.02, 60.92, 81.51], [35.02, 28.84, 27.78])),
        (
            "progressive.jpg",
            ([51.96, 60.82, 81.80], [35.21, 28.86, 27.83]),
        ),
        (
            "progressive-444.jpg",
            ([51.97, 60.82, 81.83], [35.22, 28.85, 27.86]),
        ),
    ] {
        thumbnail_matches(name, &layout(name), THUMB, golden);
    }
}

#[test]
fn a_progressive_jpeg_at_an_eighth_shrinks_on_load_to_the_same_picture() {
    // 128 px of 1280: decoded at 1/8, from a fraction of the scans.
    for (name, golden) in [
        (
            "progressive.jpg",
            ([51.95, 60.81, 81.80], [34.54, 28.24, 26.97]),
        ),
        (
            "progressive-444.jpg",
            ([51.98, 60.79, 81.87], [34.56, 28.23, 26.96]),
        ),
    ] {
        thumbnail_matches(name, &layout(name), (128, 85), golden);
    }
}

/// rocket at the fixtures' size as RGB, the source of the inputs made here.
fn rocket_big() -> RgbImage {
    decode(&photo("rocket.jpg"))
        .resize_exact(SIZE.0, SIZE.1, FilterType::Triangle)
        .to_rgb8()
}

#[test]
fn a_ycck_jpeg_shrinks_on_load_to_the_same_picture() {
    // Adobe's inverted CMYK with no black ink stores R, G, B and K = 255;
    // libjpeg-turbo writes CMYK input as YCCK.
    let rgb = rocket_big();
    let cmyk: Vec<u8> = rgb.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let image = turbojpeg::Image {
        pixels: cmyk.as_slice(),
        width: SIZE.0 as usize,
        pitch: SIZE.0 as usize * 4,
        height: SIZE.1 as usize,
        format: turbojpeg::PixelFormat::CMYK,
    };
    let mut compressor = turbojpeg::Compressor::new().unwrap();
    compressor.set_quality(90).unwrap();
    let jpeg = compressor.compress_to_vec(image).unwrap();
    let header = turbojpeg::read_header(&jpeg).unwrap();
    assert_eq!(header.colorspace, turbojpeg::Colorspace::YCCK);
    thumbnail_matches(
        "YCCK",
        &jpeg,
        THUMB,
        ([52.39, 61.35, 82.24], [35.20, 28.85, 27.78]),
    );
}

#[test]
fn every_png_colour_type_shrinks_on_load_to_the_same_picture() {
    let rgb = DynamicImage::ImageRgb8(rocket_big());
    for (what, img, golden) in [
        (
            "RGB",
            rgb.clone(),
            ([52.47, 61.43, 82.30], [35.19, 28.84, 27.77]),
        ),
        (
            "grey",
            DynamicImage::ImageLuma8(rgb.to_luma8()),
            ([61.01, 61.01, 61.01], [29.23, 29.23, 29.23]),
        ),
        (
            "16-bit RGB",
            DynamicImage::ImageRgb16(rgb.to_rgb16()),
            ([52.47, 61.43, 82.30], [35.19, 28.84, 27.77]),
        ),
        (
            "opaque RGBA",
            DynamicImage::ImageRgba8(rgb.to_rgba8()),
            ([52.47, 61.43, 82.30], [35.19, 28.84, 27.77]),
        ),
    ] {
        thumbnail_matches(what, &encode(&img, ImageFormat::Png), THUMB, golden);
    }
}

#[test]
fn transparent_pixels_do_not_darken_a_png_shrunk_on_load() {
    // The right half fully transparent black, the left half opaque rocket.
    let mut rgba = rocket_big();
    let rgba = image::RgbaImage::from_fn(SIZE.0, SIZE.1, |x, y| {
        let p = rgba.get_pixel_mut(x, y);
        if x < SIZE.0 / 2 {
            image::Rgba([p[0], p[1], p[2], 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let png = encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png);
    let out = run_as(&png, &[thumbnail(256, 256)], OutputFormat::Png);
    assert!(shrunk_on_load(&out));
    let got = decode(&out.bytes).to_rgba8();
    assert_eq!(got.dimensions(), THUMB);
    // The column of boxes at the seam mixes opaque and transparent pixels:
    // its colour must be the opaque side's, not pulled towards black.
    let want = DynamicImage::ImageRgba8(rgba)
        .crop_imm(0, 0, SIZE.0 / 2, SIZE.1)
        .resize_exact(THUMB.0 / 2, THUMB.1, FilterType::Lanczos3)
        .to_rgba8();
    let seam = THUMB.0 / 2 - 1;
    let column = |img: &image::RgbaImage, x: u32| -> f64 {
        (0..THUMB.1)
            .map(|y| {
                f64::from(
                    img.get_pixel(x, y).0[..3]
                        .iter()
                        .map(|&c| u32::from(c))
                        .sum::<u32>(),
                )
            })
            .sum::<f64>()
            / f64::from(THUMB.1 * 3)
    };
    let (got_seam, want_seam) = (column(&got, seam), column(&want, seam));
    assert!(
        (got_seam - want_seam).abs() < 8.0,
        "seam column mean {got_seam:.1}, opaque side {want_seam:.1}"
    );
    assert!(
        got.get_pixel(THUMB.0 - 1, 0)[3] == 0,
        "transparent stays so"
    );
}

#[test]
fn an_interlaced_png_is_decoded_whole_and_still_thumbnailed() {
    let png = photo("layouts/chelsea-interlaced.png");
    let out = run_as(&png, &[thumbnail(128, 128)], OutputFormat::Png);
    assert!(!shrunk_on_load(&out), "Adam7 rows arrive in passes");
    assert_eq!((out.width, out.height), (128, 85));
    let want = decode(&photo("chelsea.png"))
        .resize_exact(128, 85, FilterType::Lanczos3)
        .to_rgb8();
    let diff = mean_abs_diff(&decode(&out.bytes).to_rgb8(), &want);
    assert!(diff < 3.0, "mean difference {diff:.2}");
}

#[test]
fn a_lossy_webp_shrinks_on_load_to_the_same_picture() {
    thumbnail_matches(
        "lossy WebP",
        &photo("layouts/rocket-lossy.webp"),
        THUMB,
        ([51.66, 61.08, 81.77], [35.06, 28.83, 27.67]),
    );
}

#[test]
fn a_lossless_webp_shrinks_on_load_to_the_same_picture() {
    let rgba = DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(rocket_big()).to_rgba8());
    thumbnail_matches(
        "lossless WebP",
        &encode(&rgba, ImageFormat::WebP),
        THUMB,
        ([52.29, 61.31, 82.30], [35.01, 28.78, 27.73]),
    );
}
