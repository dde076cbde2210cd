//! What an output keeps of its photo besides pixels: the EXIF a recipe's
//! `metadata` keeps (nothing, authorship, or all but what the recipe made
//! stale) and, with `keep_icc`, the wide gamut with its profile — in every
//! output format, from JPEG and HEIF sources.

mod support;

use std::io::Cursor;

use common::recipe::{Encoding, Metadata, Op, OutputFormat};
use exif::experimental::Writer;
use exif::{Field, In, Rational, Reader, Tag, Value};
use image::{DynamicImage, RgbImage};
use img_parts::{Bytes, DynImage, ImageEXIF, ImageICC};
use libheif_rs::ColorPrimaries;
use libheif_rs::HeifContext;
use moxcms::{ColorProfile, Layout, TransformOptions};
use support::{avif_with_primaries, decode, mean_abs_diff, photo, run};

const FORMATS: [OutputFormat; 4] = [
    OutputFormat::Jpeg,
    OutputFormat::Png,
    OutputFormat::Webp,
    OutputFormat::Avif,
];

fn ascii(text: &str) -> Value {
    Value::Ascii(vec![text.as_bytes().to_vec()])
}

fn field(tag: Tag, value: Value) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    }
}

/// The EXIF a camera writes: authorship, the camera and its serial number,
/// where it was, that it was held sideways, the size it shot, and a
/// thumbnail of the whole frame.
fn camera_exif() -> Vec<u8> {
    let degrees = |d| Rational { num: d, denom: 1 };
    let fields = [
        field(Tag::Artist, ascii("Ada Lovelace")),
        field(Tag::Copyright, ascii("(c) 2026 Ada Lovelace")),
        field(Tag::DateTimeOriginal, ascii("2026:12:06 10:30:00")),
        field(Tag::OffsetTimeOriginal, ascii("+01:00")),
        field(Tag::Make, ascii("Darkroom Camera Co")),
        field(Tag::BodySerialNumber, ascii("SN-0042")),
        field(Tag::GPSLatitudeRef, ascii("N")),
        field(
            Tag::GPSLatitude,
            Value::Rational(vec![degrees(48), degrees(51), degrees(24)]),
        ),
        field(Tag::Orientation, Value::Short(vec![6])),
        field(Tag::PixelXDimension, Value::Long(vec![451])),
    ];
    let thumbnail = support::encode(&DynamicImage::new_rgb8(16, 16), image::ImageFormat::Jpeg);
    let mut writer = Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    writer.set_jpeg(&thumbnail, In::THUMBNAIL);
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

/// chelsea.png's colours re-expressed in Display P3, a wider gamut, as
/// stored samples (what a decoder gives before colour management).
fn chelsea_p3_samples() -> RgbImage {
    let srgb = decode(&photo("chelsea.png")).to_rgb8();
    let to_p3 = ColorProfile::new_srgb()
        .create_transform_8bit(
            Layout::Rgb,
            &ColorProfile::new_display_p3(),
            Layout::Rgb,
            TransformOptions::default(),
        )
        .unwrap();
    let mut pixels = vec![0u8; srgb.as_raw().len()];
    to_p3.transform(srgb.as_raw(), &mut pixels).unwrap();
    RgbImage::from_raw(srgb.width(), srgb.height(), pixels).unwrap()
}

/// A camera's JPEG: Display P3 with its profile and [`camera_exif`]
/// (held sideways: shown, it is 300 wide and 451 high).
fn camera_jpeg() -> Vec<u8> {
    let jpeg = support::encode(
        &DynamicImage::ImageRgb8(chelsea_p3_samples()),
        image::ImageFormat::Jpeg,
    );
    let mut file = DynImage::from_bytes(jpeg.into()).unwrap().unwrap();
    let p3 = ColorProfile::new_display_p3().encode().unwrap();
    file.set_icc_profile(Some(Bytes::from(p3)));
    file.set_exif(Some(Bytes::from(camera_exif())));
    file.encoder().bytes().to_vec()
}

fn encoding(format: OutputFormat, metadata: Option<Metadata>, keep_icc: bool) -> Op {
    Op::Format(Encoding {
        metadata,
        keep_icc,
        ..Encoding::of(format)
    })
}

fn is_avif(file: &[u8]) -> bool {
    file.get(4..12) == Some(b"ftypavif")
}

/// The EXIF block a file carries, from its TIFF header on.
fn exif_block(file: &[u8]) -> Option<Vec<u8>> {
    if is_avif(file) {
        let context = HeifContext::read_from_bytes(file).unwrap();
        let primary = context.primary_image_handle().unwrap();
        let mut ids = [0; 1];
        if primary.metadata_block_ids(&mut ids, b"Exif") == 0 {
            return None;
        }
        let block = primary.metadata(ids[0]).unwrap();
        let offset = u32::from_be_bytes(block[..4].try_into().unwrap()) as usize;
        return Some(block[4 + offset..].to_vec());
    }
    let container = DynImage::from_bytes(file.to_vec().into()).unwrap().unwrap();
    container.exif().map(|exif| exif.to_vec())
}

/// The tags of a file's EXIF and their values as text, `None` without one.
fn exif_tags(file: &[u8]) -> Option<Vec<(Tag, In, String)>> {
    let exif = Reader::new().read_raw(exif_block(file)?).unwrap();
    Some(
        exif.fields()
            .map(|f| (f.tag, f.ifd_num, f.display_value().to_string()))
            .collect(),
    )
}

fn icc_of(file: &[u8]) -> Option<Vec<u8>> {
    if is_avif(file) {
        let context = HeifContext::read_from_bytes(file).unwrap();
        let primary = context.primary_image_handle().unwrap();
        return primary.color_profile_raw().map(|p| p.data);
    }
    let container = DynImage::from_bytes(file.to_vec().into()).unwrap().unwrap();
    container.icc_profile().map(|icc| icc.to_vec())
}

/// A file's samples as stored, whatever colours they stand for; the engine
/// reads an AVIF, keeping them as they are.
fn samples(file: &[u8]) -> RgbImage {
    if is_avif(file) {
        let png = run(file, &[encoding(OutputFormat::Png, None, true)]);
        return decode(&png.bytes).to_rgb8();
    }
    decode(file).to_rgb8()
}

fn has(tags: &[(Tag, In, String)], tag: Tag) -> bool {
    tags.iter().any(|(t, _, _)| *t == tag)
}

fn value(tags: &[(Tag, In, String)], tag: Tag) -> &str {
    &tags.iter().find(|(t, _, _)| *t == tag).unwrap().2
}

#[test]
fn by_default_an_output_carries_no_exif_and_no_profile() {
    let jpeg = camera_jpeg();
    for format in FORMATS {
        let out = run(&jpeg, &[encoding(format, None, false)]);
        assert_eq!(exif_tags(&out.bytes), None, "{format:?}");
        assert_eq!(icc_of(&out.bytes), None, "{format:?}");
        let out = run(&jpeg, &[encoding(format, Some(Metadata::Strip), false)]);
        assert_eq!(exif_tags(&out.bytes), None, "{format:?} with strip");
    }
}

#[test]
fn copyright_keeps_who_and_when_and_drops_place_camera_and_serials() {
    let jpeg = camera_jpeg();
    for format in FORMATS {
        let out = run(&jpeg, &[encoding(format, Some(Metadata::Copyright), false)]);
        let tags = exif_tags(&out.bytes).unwrap_or_else(|| panic!("{format:?}: no EXIF"));
        assert!(
            value(&tags, Tag::Artist).contains("Ada Lovelace"),
            "{format:?}"
        );
        assert!(
            value(&tags, Tag::Copyright).contains("2026 Ada"),
            "{format:?}"
        );
        assert!(value(&tags, Tag::DateTimeOriginal).contains("2026-12-06 10:30:00"));
        assert!(has(&tags, Tag::OffsetTimeOriginal), "{format:?}");
        for gone in [
            Tag::GPSLatitude,
            Tag::GPSLatitudeRef,
            Tag::BodySerialNumber,
            Tag::Make,
            Tag::Orientation,
        ] {
            assert!(!has(&tags, gone), "{format:?} kept {gone}");
        }
        assert!(
            tags.iter().all(|(_, ifd, _)| *ifd == In::PRIMARY),
            "{format:?} kept the thumbnail"
        );
    }
}

#[test]
fn all_keeps_every_tag_but_the_stale_ones_and_says_the_pixels_are_upright() {
    let jpeg = camera_jpeg();
    for format in FORMATS {
        let out = run(&jpeg, &[encoding(format, Some(Metadata::All), false)]);
        // Turned upright by the engine, as the EXIF orientation said.
        assert_eq!((out.width, out.height), (300, 451), "{format:?}");
        let tags = exif_tags(&out.bytes).unwrap_or_else(|| panic!("{format:?}: no EXIF"));
        for kept in [
            Tag::Artist,
            Tag::Make,
            Tag::BodySerialNumber,
            Tag::GPSLatitude,
            Tag::GPSLatitudeRef,
        ] {
            assert!(has(&tags, kept), "{format:?} dropped {kept}");
        }
        assert_eq!(
            value(&tags, Tag::Orientation),
            "row 0 at top and column 0 at left"
        );
        assert!(!has(&tags, Tag::PixelXDimension), "{format:?}");
        assert!(
            tags.iter().all(|(_, ifd, _)| *ifd == In::PRIMARY),
            "{format:?} kept the uncropped thumbnail"
        );
        // Read again, the output is not turned a second time.
        let again = run(&out.bytes, &[encoding(OutputFormat::Png, None, false)]);
        assert_eq!((again.width, again.height), (300, 451), "{format:?}");
    }
}

#[test]
fn keep_icc_keeps_the_wide_gamut_samples_and_embeds_their_profile() {
    let jpeg = camera_jpeg();
    let stored = DynamicImage::ImageRgb8(decode(&jpeg).to_rgb8())
        .rotate90()
        .to_rgb8();
    let srgb = decode(&photo("chelsea.png")).rotate90().to_rgb8();
    let p3 = ColorProfile::new_display_p3();
    for format in FORMATS {
        let out = run(&jpeg, &[encoding(format, None, true)]);
        let icc = icc_of(&out.bytes).unwrap_or_else(|| panic!("{format:?}: no profile"));
        let profile = ColorProfile::new_from_slice(&icc).unwrap();
        assert_eq!(profile.red_colorant, p3.red_colorant, "{format:?}");
        let kept = samples(&out.bytes);
        let off_p3 = mean_abs_diff(&kept, &stored);
        assert!(off_p3 < 2.5, "{format:?}: {off_p3:.2} from the P3 samples");
        assert!(mean_abs_diff(&kept, &srgb) > off_p3 + 1.0, "{format:?}");
        // The same recipe without it: sRGB samples, no profile.
        let converted = run(&jpeg, &[encoding(format, None, false)]);
        let converted = samples(&converted.bytes);
        let off_srgb = mean_abs_diff(&converted, &srgb);
        assert!(off_srgb < 4.0, "{format:?}: {off_srgb:.2} from sRGB");
        let off = mean_abs_diff(&converted, &stored);
        assert!(
            off > off_srgb + 0.5,
            "{format:?}: {off:.2} from P3, {off_srgb:.2} from sRGB"
        );
    }
}

#[test]
fn a_heif_keeps_its_exif_and_its_profile() {
    // A HEIF carrying EXIF, made by the engine itself from the camera's JPEG.
    let avif = run(
        &camera_jpeg(),
        &[encoding(OutputFormat::Avif, Some(Metadata::All), true)],
    )
    .bytes;
    let out = run(
        &avif,
        &[encoding(
            OutputFormat::Jpeg,
            Some(Metadata::Copyright),
            true,
        )],
    );
    let tags = exif_tags(&out.bytes).expect("the HEIF's EXIF");
    assert!(value(&tags, Tag::Artist).contains("Ada Lovelace"));
    assert!(!has(&tags, Tag::GPSLatitude));
    let icc = icc_of(&out.bytes).expect("the HEIF's profile");
    let p3 = ColorProfile::new_display_p3();
    assert_eq!(
        ColorProfile::new_from_slice(&icc).unwrap().red_colorant,
        p3.red_colorant
    );
}

#[test]
fn a_heif_naming_display_p3_by_code_point_keeps_it_as_a_profile() {
    let green = [40, 200, 40];
    let avif = avif_with_primaries(green, ColorPrimaries::SMPTE_EG_432_1);
    for format in FORMATS {
        let kept = run(&avif, &[encoding(format, None, true)]);
        let icc = icc_of(&kept.bytes).unwrap_or_else(|| panic!("{format:?}: no profile"));
        let profile = ColorProfile::new_from_slice(&icc).unwrap();
        let p3 = ColorProfile::new_display_p3();
        let close = |a: f64, b: f64| (a - b).abs() < 0.002;
        assert!(
            close(profile.green_colorant.x, p3.green_colorant.x)
                && close(profile.green_colorant.y, p3.green_colorant.y),
            "{format:?}: {:?}",
            profile.green_colorant
        );
        let [r, g, b] = samples(&kept.bytes).get_pixel(8, 8).0;
        assert!(
            r.abs_diff(40) <= 3 && g.abs_diff(200) <= 3 && b.abs_diff(40) <= 3,
            "{format:?}: the samples changed to {:?}",
            [r, g, b]
        );
    }
}

#[test]
fn a_jpeg_xl_keeps_its_exif_box_and_is_turned_once() {
    // Made from a JPEG whose EXIF said to turn it: the EXIF box came along.
    let jxl = photo("jxl/chelsea-turned.jxl");
    let out = run(
        &jxl,
        &[encoding(OutputFormat::Jpeg, Some(Metadata::All), false)],
    );
    assert_eq!((out.width, out.height), (80, 120));
    let tags = exif_tags(&out.bytes).expect("the JPEG XL's EXIF");
    assert_eq!(
        value(&tags, Tag::Orientation),
        "row 0 at top and column 0 at left"
    );
}
