//! Formats in and out on real photos: HEIC and AVIF read with their
//! rotation, JPEG XL bare and recompressed from a JPEG, lossy WebP with three bands, AVIF with alpha only when needed,
//! JPEG's options; and broken HEIF files refused cleanly.

mod support;

use std::time::{Duration, Instant};

use common::Limits;
use common::recipe::{Encoding, Op, OutputFormat, Subsampling};
use image::{DynamicImage, Rgba, RgbaImage};
use libheif_rs::{
    Channel, ColorPrimaries, ColorSpace, CompressionFormat, EncoderQuality, EncodingOptions,
    HeifContext, ImageOrientation, LibHeif, RgbChroma,
};
use support::{avif_with_primaries, decode, mean_abs_diff, photo, refusal, run, thumbnail};
use worker::engine::{EngineError, process};

fn format(encoding: Encoding) -> Op {
    Op::Format(encoding)
}

/// Decodes any output through the engine itself, as a PNG.
fn pixels(bytes: &[u8]) -> DynamicImage {
    decode(&run(bytes, &[format(Encoding::of(OutputFormat::Png))]).bytes)
}

#[test]
fn an_iphone_heic_becomes_a_jpeg_that_looks_like_the_photo() {
    let out = run(&photo("heif/rocket.heic"), &[]);
    assert_eq!(out.format, OutputFormat::Jpeg);
    assert_eq!((out.width, out.height), (640, 427));
    let original = decode(&photo("rocket.jpg")).to_rgb8();
    let diff = mean_abs_diff(&decode(&out.bytes).to_rgb8(), &original);
    assert!(diff < 6.0, "HEIC decoded {diff} away from the photo");
}

#[test]
fn an_avif_stays_avif_and_is_thumbnailed() {
    let out = run(&photo("heif/rocket.avif"), &[thumbnail(256, 256)]);
    assert_eq!(out.format, OutputFormat::Avif);
    assert_eq!((out.width, out.height), (256, 171));
    let expected = decode(&run(&photo("rocket.jpg"), &[thumbnail(256, 256)]).bytes).to_rgb8();
    let diff = mean_abs_diff(&pixels(&out.bytes).to_rgb8(), &expected);
    assert!(diff < 8.0, "AVIF thumbnail {diff} away from the JPEG's");
}

#[test]
fn a_jpeg_xl_becomes_a_jpeg_that_looks_like_the_photo() {
    // The photo as the engine shows it: its Adobe RGB turned into sRGB.
    let original = pixels(&photo("rocket.jpg")).to_rgb8();
    // A lossy encode of those pixels, and the JPEG itself recompressed
    // without loss (the container, with its profile and JPEG
    // reconstruction data; upsampled by another decoder than libjpeg-turbo).
    for (name, within) in [("jxl/rocket.jxl", 3.5), ("jxl/rocket-from-jpeg.jxl", 2.5)] {
        let out = run(&photo(name), &[]);
        assert_eq!(out.format, OutputFormat::Jpeg, "{name}");
        assert_eq!((out.width, out.height), (640, 427), "{name}");
        let png = run(&photo(name), &[format(Encoding::of(OutputFormat::Png))]);
        let diff = mean_abs_diff(&decode(&png.bytes).to_rgb8(), &original);
        assert!(diff < within, "{name} decoded {diff} away from the photo");
    }
}

#[test]
fn a_jpeg_xl_is_turned_as_its_header_says() {
    // chelsea.png at 120×80, stored turned: its header says to show it
    // rotated 90° clockwise, as the JPEG it came from said in EXIF.
    let out = run(
        &photo("jxl/chelsea-turned.jxl"),
        &[format(Encoding::of(OutputFormat::Png))],
    );
    assert_eq!((out.width, out.height), (80, 120));
    let shown = decode(&out.bytes);
    let upright = decode(&photo("chelsea.png"))
        .resize_exact(120, 80, image::imageops::FilterType::CatmullRom)
        .to_rgb8();
    let back = shown.rotate270().to_rgb8();
    let wrong = shown.rotate90().to_rgb8();
    let (diff, wrong) = (
        mean_abs_diff(&back, &upright),
        mean_abs_diff(&wrong, &upright),
    );
    assert!(
        diff < 6.0 && wrong > 3.0 * diff,
        "turned back {diff:.1}, the other way {wrong:.1}"
    );
}

#[test]
fn truncated_jpeg_xl_fails_as_corrupt_and_fast_and_a_large_one_from_its_header() {
    let jxl = photo("jxl/rocket.jxl");
    for (what, input) in [
        ("cut at half", &jxl[..jxl.len() / 2]),
        ("cut in its header", &jxl[..12]),
    ] {
        let (error, took) = timed_refusal(input);
        assert!(
            matches!(error, EngineError::Corrupt(_) | EngineError::Probe(_)),
            "{what}: {error}"
        );
        assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
    }
    let tight = Limits {
        max_pixels: 100_000,
        ..Limits::default()
    };
    let error = refusal(&jxl, &tight);
    assert!(matches!(error, EngineError::Probe(_)), "{error}");
}

/// A 40×20 image, red on its left half and blue on its right, stored
/// unrotated with a property saying "rotate 90° clockwise to show".
fn heif_rotated_clockwise() -> Vec<u8> {
    let (w, h) = (40, 20);
    let lib = LibHeif::new();
    let mut image = libheif_rs::Image::new(w, h, ColorSpace::Rgb(RgbChroma::Rgb)).unwrap();
    image.create_plane(Channel::Interleaved, w, h, 8).unwrap();
    let plane = image.planes_mut().interleaved.unwrap();
    for y in 0..h as usize {
        for x in 0..w as usize {
            let rgb = if x < 20 { [255, 0, 0] } else { [0, 0, 255] };
            plane.data[y * plane.stride + x * 3..][..3].copy_from_slice(&rgb);
        }
    }
    let mut encoder = lib.encoder_for_format(CompressionFormat::Av1).unwrap();
    encoder.set_quality(EncoderQuality::Lossy(90)).unwrap();
    let mut options = EncodingOptions::new().unwrap();
    options.set_image_orientation(ImageOrientation::Rotate90Cw);
    let mut context = HeifContext::new().unwrap();
    context
        .encode_image(&image, &mut encoder, Some(options))
        .unwrap();
    context.write_to_bytes().unwrap()
}

#[test]
fn a_heif_in_display_p3_by_code_point_is_shown_in_srgb() {
    let green = [40, 200, 40];
    let srgb = pixels(&avif_with_primaries(green, ColorPrimaries::ITU_R_BT_709_5)).to_rgb8();
    let p3 = pixels(&avif_with_primaries(green, ColorPrimaries::SMPTE_EG_432_1)).to_rgb8();
    let [r, g, b] = srgb.get_pixel(8, 8).0;
    assert!(
        r.abs_diff(40) <= 3 && g.abs_diff(200) <= 3 && b.abs_diff(40) <= 3,
        "sRGB's primaries changed the colour: {:?}",
        [r, g, b]
    );
    // Display P3's green is beyond sRGB's: in sRGB it loses its red and blue.
    let [r, g, b] = p3.get_pixel(8, 8).0;
    assert!(
        r < 15 && b < 15 && (195..=215).contains(&g),
        "Display P3 green came out as {:?}",
        [r, g, b]
    );
}

/// An 8-bit RGB libheif image of `w × h` pixels of one colour.
fn heif_image(w: u32, h: u32, rgb: [u8; 3]) -> libheif_rs::Image {
    let mut image = libheif_rs::Image::new(w, h, ColorSpace::Rgb(RgbChroma::Rgb)).unwrap();
    image.create_plane(Channel::Interleaved, w, h, 8).unwrap();
    let plane = image.planes_mut().interleaved.unwrap();
    for y in 0..h as usize {
        for x in 0..w as usize {
            plane.data[y * plane.stride + x * 3..][..3].copy_from_slice(&rgb);
        }
    }
    image
}

/// A red 400×300 AVIF whose embedded 160×120 thumbnail is blue: what is
/// decoded shows in the colour.
fn avif_with_a_blue_thumbnail() -> Vec<u8> {
    let lib = LibHeif::new();
    let mut encoder = lib.encoder_for_format(CompressionFormat::Av1).unwrap();
    encoder.set_quality(EncoderQuality::Lossy(90)).unwrap();
    let mut context = HeifContext::new().unwrap();
    let primary = context
        .encode_image(&heif_image(400, 300, [220, 20, 20]), &mut encoder, None)
        .unwrap();
    context
        .encode_thumbnail(
            &heif_image(400, 300, [20, 20, 220]),
            &primary,
            160,
            &mut encoder,
            None,
        )
        .unwrap();
    context.write_to_bytes().unwrap()
}

#[test]
fn a_heif_thumbnail_op_decodes_its_embedded_thumbnail_when_it_is_large_enough() {
    let avif = avif_with_a_blue_thumbnail();
    let small = run(&avif, &[thumbnail(100, 100)]);
    assert_eq!((small.width, small.height), (100, 75));
    let [r, _, b, _] = pixels(&small.bytes).to_rgba8().get_pixel(50, 37).0;
    assert!(
        b > 150 && r < 80,
        "the thumbnail was not used: {:?}",
        [r, b]
    );
    // Larger than the thumbnail: the photo itself.
    let large = run(&avif, &[thumbnail(200, 200)]);
    assert_eq!((large.width, large.height), (200, 150));
    let [r, _, b, _] = pixels(&large.bytes).to_rgba8().get_pixel(100, 75).0;
    assert!(r > 150 && b < 80, "the photo was not used: {:?}", [r, b]);
}

#[test]
fn a_heif_rotation_property_is_applied() {
    let out = pixels(&heif_rotated_clockwise()).to_rgb8();
    // Turned clockwise, the left (red) half is on top.
    assert_eq!(out.dimensions(), (20, 40));
    let top = out.get_pixel(10, 5).0;
    let bottom = out.get_pixel(10, 35).0;
    assert!(top[0] > 200 && top[2] < 60, "top is {top:?}, not red");
    assert!(
        bottom[2] > 200 && bottom[0] < 60,
        "bottom is {bottom:?}, not blue"
    );
}

#[test]
fn webp_is_lossy_with_three_bands_unless_lossless_is_asked() {
    // An opaque image that comes with an alpha channel, as PNGs often do.
    let rgba = DynamicImage::ImageRgba8(decode(&photo("rocket.jpg")).to_rgba8());
    let jpeg = support::encode(&rgba, image::ImageFormat::Png);
    let lossy = run(&jpeg, &[format(Encoding::of(OutputFormat::Webp))]);
    let features = libwebp::features(&lossy.bytes).unwrap();
    assert!(!features.has_alpha, "an opaque photo got an alpha plane");
    let lossless_encoding = Encoding {
        lossless: true,
        ..Encoding::of(OutputFormat::Webp)
    };
    let lossless = run(&jpeg, &[format(lossless_encoding)]);
    assert!(
        lossy.bytes.len() * 4 < lossless.bytes.len(),
        "lossy {} bytes, lossless {}",
        lossy.bytes.len(),
        lossless.bytes.len()
    );
    let exact = decode(&run(&jpeg, &[format(Encoding::of(OutputFormat::Png))]).bytes).to_rgb8();
    assert_eq!(
        decode(&lossless.bytes).to_rgb8(),
        exact,
        "lossless changed pixels"
    );
    let diff = mean_abs_diff(&decode(&lossy.bytes).to_rgb8(), &exact);
    assert!(diff < 5.0, "lossy WebP {diff} away from the photo");
}

/// Whether a HEIF's primary image has an alpha channel.
fn heif_has_alpha(bytes: &[u8]) -> bool {
    let context = HeifContext::read_from_bytes(bytes).unwrap();
    context.primary_image_handle().unwrap().has_alpha_channel()
}

#[test]
fn avif_keeps_transparency_and_adds_no_alpha_to_an_opaque_image() {
    let mut rgba = RgbaImage::from_pixel(64, 64, Rgba([200, 40, 40, 255]));
    for (x, _, p) in rgba.enumerate_pixels_mut() {
        if x >= 32 {
            *p = Rgba([0, 0, 0, 0]);
        }
    }
    let png = support::encode(&DynamicImage::ImageRgba8(rgba), image::ImageFormat::Png);
    let avif = run(&png, &[format(Encoding::of(OutputFormat::Avif))]);
    assert!(heif_has_alpha(&avif.bytes));
    let back = pixels(&avif.bytes).to_rgba8();
    assert!(back.get_pixel(10, 10)[3] > 250 && back.get_pixel(50, 10)[3] < 5);

    let rgba = DynamicImage::ImageRgba8(decode(&photo("coffee.png")).to_rgba8());
    let opaque = support::encode(&rgba, image::ImageFormat::Png);
    let opaque = run(&opaque, &[format(Encoding::of(OutputFormat::Avif))]);
    assert!(
        !heif_has_alpha(&opaque.bytes),
        "an opaque photo got an alpha plane"
    );
}

/// The JPEG's start-of-frame marker and its first component's sampling
/// factors (0x22: colour at half resolution each way; 0x11: full).
fn jpeg_frame(bytes: &[u8]) -> (u8, u8) {
    let mut i = 2;
    loop {
        let (marker, len) = (
            bytes[i + 1],
            usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]])),
        );
        if (0xC0..=0xC2).contains(&marker) {
            return (marker, bytes[i + 11]);
        }
        i += 2 + len;
    }
}

#[test]
fn jpeg_is_baseline_420_unless_progressive_or_444_is_asked() {
    let jpeg = photo("rocket.jpg");
    let plain = run(&jpeg, &[format(Encoding::of(OutputFormat::Jpeg))]);
    assert_eq!(jpeg_frame(&plain.bytes), (0xC0, 0x22));
    let asked = Encoding {
        progressive: true,
        subsampling: Some(Subsampling::Full),
        ..Encoding::of(OutputFormat::Jpeg)
    };
    let out = run(&jpeg, &[format(asked)]);
    assert_eq!(jpeg_frame(&out.bytes), (0xC2, 0x11));
}

#[test]
fn jpeg_huffman_tables_are_fitted_to_the_image() {
    // The `image` crate's encoder writes the standard tables, at the same
    // quantisation for a given quality.
    let photo = decode(&photo("rocket.jpg"));
    let mut standard = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut standard, 85)
        .encode_image(&photo.to_rgb8())
        .unwrap();
    let png = support::encode(&photo, image::ImageFormat::Png);
    let ours = run(&png, &[format(Encoding::of(OutputFormat::Jpeg))]);
    assert!(
        ours.bytes.len() * 100 < standard.len() * 95,
        "{} bytes against the standard tables' {}",
        ours.bytes.len(),
        standard.len()
    );
}

/// The engine's answer to `input`, and how long it took.
fn timed_refusal(input: &[u8]) -> (EngineError, Duration) {
    let started = Instant::now();
    let result = process(input, &[], &Limits::default(), None);
    let error = result.expect_err(&format!("{} bytes were decoded", input.len()));
    (error, started.elapsed())
}

#[test]
fn truncated_and_garbled_heif_files_fail_as_corrupt_and_fast() {
    let heic = photo("heif/rocket.heic");
    // Its boxes garbled: HEVC conceals damage to the picture data, as video
    // does, so only damage to the structure can be told.
    let mut garbled = heic.clone();
    let meta = garbled.windows(4).position(|w| w == b"meta").unwrap();
    garbled[meta + 40..meta + 240].fill(0xA5);
    for (what, input) in [
        ("cut at half", heic[..heic.len() / 2].to_vec()),
        ("cut in its header", heic[..600].to_vec()),
        ("garbled", garbled),
    ] {
        let (error, took) = timed_refusal(&input);
        assert!(
            matches!(error, EngineError::Corrupt(_) | EngineError::Probe(_)),
            "{what}: {error}"
        );
        assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
    }
}

#[test]
fn a_heif_declaring_a_huge_image_is_refused_from_its_header() {
    let mut bomb = photo("heif/rocket.heic");
    let at = bomb.windows(4).position(|w| w == b"ispe").unwrap() + 8;
    bomb[at..at + 8].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]); // 100000 × 100000
    let error = refusal(&bomb, &Limits::default());
    assert!(
        matches!(error, EngineError::Probe(_)),
        "a 100000×100000 HEIC was not refused from its header: {error}"
    );
}

#[test]
fn lossless_avif_keeps_every_pixel() {
    let png = photo("chelsea.png");
    let encoding = Encoding {
        lossless: true,
        ..Encoding::of(OutputFormat::Avif)
    };
    let avif = run(&png, &[format(encoding)]);
    let exact = decode(&png).to_rgb8();
    let diff = mean_abs_diff(&pixels(&avif.bytes).to_rgb8(), &exact);
    assert!(diff < 0.01, "lossless AVIF {diff} away from the PNG");
}
