//! Colour: CMYK JPEGs and ICC profiles come out as the sRGB they stand for.

mod support;

use common::recipe::OutputFormat;
use image::ImageEncoder;
use support::{decode, mean_abs_diff, photo, run_as};

#[test]
fn cmyk_jpeg_comes_out_in_the_right_colours() {
    let cmyk = photo("chelsea-cmyk.jpg");
    let out = run_as(&cmyk, &[], OutputFormat::Png);
    let got = decode(&out.bytes).to_rgb8();
    let want = decode(&photo("chelsea.png")).to_rgb8();
    assert_eq!(got.dimensions(), want.dimensions());
    let diff = mean_abs_diff(&got, &want);
    assert!(
        diff < 12.0,
        "mean difference {diff:.1} per channel: colours are off (inverted CMYK?)"
    );
}

/// chelsea.png re-expressed in Display P3 (a wider gamut), as a PNG that
/// carries the P3 profile.
fn chelsea_in_display_p3() -> Vec<u8> {
    use moxcms::{ColorProfile, Layout, TransformOptions};
    let srgb = decode(&photo("chelsea.png")).to_rgb8();
    let p3 = ColorProfile::new_display_p3();
    let to_p3 = ColorProfile::new_srgb()
        .create_transform_8bit(Layout::Rgb, &p3, Layout::Rgb, TransformOptions::default())
        .unwrap();
    let mut pixels = vec![0u8; srgb.as_raw().len()];
    to_p3.transform(srgb.as_raw(), &mut pixels).unwrap();
    let mut png = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
    encoder.set_icc_profile(p3.encode().unwrap()).unwrap();
    encoder
        .write_image(
            &pixels,
            srgb.width(),
            srgb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    png
}

#[test]
fn icc_profiles_are_converted_to_srgb() {
    let p3 = chelsea_in_display_p3();
    let original = decode(&photo("chelsea.png")).to_rgb8();
    // Read as if it were sRGB, the P3 numbers are visibly off...
    let raw = decode(&p3).to_rgb8();
    assert!(
        mean_abs_diff(&raw, &original) > 3.0,
        "the test image is not different enough"
    );
    // ...converted through its profile, they are the original colours again.
    let out = run_as(&p3, &[], OutputFormat::Png);
    let converted = decode(&out.bytes).to_rgb8();
    let diff = mean_abs_diff(&converted, &original);
    assert!(diff < 1.5, "mean difference {diff:.2} after conversion");
}
