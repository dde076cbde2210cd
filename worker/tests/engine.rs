//! The image engine on real photos: geometry, output formats, and the pixel
//! layouts inputs come in (16-bit, grayscale, alpha, animation).

mod support;

use common::recipe::{Encoding, Op, OutputFormat};
use image::{DynamicImage, ImageFormat};
use support::{decode, encode, photo, run, thumbnail};

#[test]
fn thumbnail_fits_box_keeps_aspect_and_format() {
    let out = run(&photo("rocket.jpg"), &[thumbnail(256, 256)]);
    assert_eq!((out.width, out.height), (256, 171));
    assert_eq!(out.format, OutputFormat::Jpeg);
    assert_eq!(image::guess_format(&out.bytes).unwrap(), ImageFormat::Jpeg);
    let img = decode(&out.bytes);
    assert_eq!((img.width(), img.height()), (256, 171));
}

#[test]
fn thumbnail_never_enlarges() {
    let out = run(&photo("chelsea.png"), &[thumbnail(2000, 2000)]);
    assert_eq!((out.width, out.height), (451, 300));
    assert_eq!(out.format, OutputFormat::Png);
}

/// The op that picks `format` for the output.
fn format(format: OutputFormat, quality: Option<u8>) -> Op {
    Op::Format(Encoding {
        quality,
        ..Encoding::of(format)
    })
}

#[test]
fn format_op_picks_output_format() {
    let ops = [thumbnail(32, 32), format(OutputFormat::Png, None)];
    let out = run(&photo("rocket.jpg"), &ops);
    assert_eq!(image::guess_format(&out.bytes).unwrap(), ImageFormat::Png);
}

#[test]
fn sixteen_bit_and_grayscale_inputs_are_processed() {
    let wide = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(
        300,
        200,
        image::Rgb([40000u16, 20000, 1000]),
    ));
    let out = run(&encode(&wide, ImageFormat::Png), &[thumbnail(30, 30)]);
    assert_eq!((out.width, out.height), (30, 20));
    let p = decode(&out.bytes).to_rgb8().get_pixel(5, 5).0;
    assert!(
        (p[0] as i32 - 156).abs() <= 2 && (p[1] as i32 - 78).abs() <= 2,
        "{p:?}"
    );

    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(100, 50, image::Luma([77])));
    let jpeg = [format(OutputFormat::Jpeg, Some(90))];
    let out = run(&encode(&gray, ImageFormat::Png), &jpeg);
    let p = decode(&out.bytes).to_luma8().get_pixel(10, 10).0[0];
    assert!((i32::from(p) - 77).abs() <= 2);
}

#[test]
fn transparency_becomes_white_in_jpeg_output() {
    let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
        40,
        40,
        image::Rgba([0, 0, 0, 0]),
    ));
    let jpeg = [format(OutputFormat::Jpeg, None)];
    let out = run(&encode(&img, ImageFormat::Png), &jpeg);
    let p = decode(&out.bytes).to_rgb8().get_pixel(20, 20).0;
    assert!(
        p.iter().all(|&c| c >= 250),
        "transparent pixel is {p:?}, not white"
    );
}

#[test]
fn animated_gif_yields_its_first_frame() {
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        for color in [[0u8, 200, 0, 255], [200, 0, 0, 255]] {
            let frame = image::Frame::new(image::RgbaImage::from_pixel(16, 16, image::Rgba(color)));
            enc.encode_frame(frame).unwrap();
        }
    }
    let out = run(&gif, &[]);
    assert_eq!(out.format, OutputFormat::Png);
    let p = decode(&out.bytes).to_rgb8().get_pixel(8, 8).0;
    assert!(
        p[1] > 150 && p[0] < 50,
        "not the first (green) frame: {p:?}"
    );
}
