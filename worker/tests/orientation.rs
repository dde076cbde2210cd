//! EXIF orientation, applied before the ops and then stripped, and the
//! shrink-on-load path of large JPEGs, which must give what a full decode
//! gives.

mod support;

use common::recipe::{Fit, Op};
use image::{DynamicImage, ImageFormat};
use support::{decode, encode, mean_abs_diff, photo, run, thumbnail};
use worker::engine::Output;

/// A JPEG with an EXIF APP1 segment carrying `orientation`.
fn jpeg_with_orientation(img: &DynamicImage, orientation: u16) -> Vec<u8> {
    let plain = encode(img, ImageFormat::Jpeg);
    // Big-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1.
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn exif_orientation_is_applied_before_ops_and_then_stripped() {
    // 60×20, left half red: rotated 90° clockwise it is 20×60, top half red.
    let img = image::RgbImage::from_fn(60, 20, |x, _| {
        if x < 30 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let jpeg = jpeg_with_orientation(&DynamicImage::ImageRgb8(img), 6);
    // Coordinates refer to the oriented image: the top 20×30 is all red.
    let top = Op::Crop {
        x: Some(0),
        y: Some(0),
        width: Some(20),
        height: Some(30),
        aspect: None,
        gravity: None,
    };
    let out = run(&jpeg, &[top]);
    assert_eq!((out.width, out.height), (20, 30));
    let decoded = decode(&out.bytes).to_rgb8();
    let mean_red = decoded.pixels().map(|p| f32::from(p[0])).sum::<f32>() / 600.0;
    assert!(
        mean_red > 200.0,
        "crop is not the red half: mean red {mean_red}"
    );
    assert!(
        !out.bytes.windows(4).any(|w| w == b"Exif"),
        "metadata was not stripped"
    );
}

/// Whether the first op, `op`, was applied while decoding, not after it:
/// otherwise these tests compare the full decode with itself.
fn shrunk_on_load(out: &Output, op: &str) -> bool {
    !out.timings.iter().any(|(step, _)| *step == op)
}

/// A large JPEG (rocket.jpg scaled ×4 = 2560×1708) so that thumbnails take
/// the shrink-on-load path.
fn large_jpeg(orientation: Option<u16>) -> Vec<u8> {
    let img = decode(&photo("rocket.jpg"));
    let big = img.resize_exact(2560, 1708, image::imageops::FilterType::Triangle);
    match orientation {
        Some(o) => jpeg_with_orientation(&big, o),
        None => encode(&big, ImageFormat::Jpeg),
    }
}

#[test]
fn shrink_on_load_matches_the_full_decode() {
    let jpeg = large_jpeg(None);
    let fast = run(&jpeg, &[thumbnail(256, 256)]);
    assert!(shrunk_on_load(&fast, "thumbnail"), "decoded whole");
    assert_eq!((fast.width, fast.height), (256, 171));
    let slow = decode(&jpeg).resize_exact(256, 171, image::imageops::FilterType::Lanczos3);
    let (a, b) = (decode(&fast.bytes).to_rgb8(), slow.to_rgb8());
    let diff = mean_abs_diff(&a, &b);
    assert!(diff < 4.0, "mean difference {diff:.2} per channel");
}

#[test]
fn shrink_on_load_respects_exif_orientation() {
    let jpeg = large_jpeg(Some(6));
    let out = run(&jpeg, &[thumbnail(256, 256)]);
    assert!(shrunk_on_load(&out, "thumbnail"), "decoded whole");
    assert_eq!((out.width, out.height), (171, 256));
    // The right size is not enough: the picture must be turned, not
    // squeezed into the turned shape. Decoding ignores EXIF, so this turns
    // the stored pixels as orientation 6 says.
    let upright = decode(&jpeg).rotate90();
    let want = upright.resize_exact(171, 256, image::imageops::FilterType::Lanczos3);
    let diff = mean_abs_diff(&decode(&out.bytes).to_rgb8(), &want.to_rgb8());
    assert!(diff < 4.0, "mean difference {diff:.2} per channel");
    let cover = Op::Resize {
        width: 100,
        height: 300,
        fit: Fit::Cover,
    };
    let cover = run(&jpeg, &[cover]);
    assert!(shrunk_on_load(&cover, "resize"), "decoded whole");
    assert_eq!((cover.width, cover.height), (100, 300));
}
