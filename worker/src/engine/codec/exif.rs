//! EXIF: read from whichever container a photo came in, then cut down to
//! what the recipe's `metadata` keeps, so an output never carries what its
//! owner did not choose to publish.
//!
//! - `copyright`: who made it and when — artist, copyright, the dates and
//!   their time zones. No GPS, no camera or lens serial numbers, nothing
//!   else.
//! - `all`: every tag of the photo's own directories (camera, exposure,
//!   GPS...), its orientation set to upright since the pixels now are, its
//!   pixel dimensions dropped since they were the original's.
//! - Never: the embedded thumbnail (the photo before the recipe: uncropped,
//!   unretouched) nor tags that point into the source file.

use std::io::Cursor;

use common::probe::InputFormat;
use common::recipe::Metadata;
use exif::experimental::Writer;
use exif::{Exif, Field, In, Reader, Tag, Value};
use jxl_oxide::{AuxBoxData, JxlImage};

use super::heif;

/// Who made a photo and when: what `copyright` keeps.
const AUTHORSHIP: [Tag; 8] = [
    Tag::Artist,
    Tag::Copyright,
    Tag::DateTime,
    Tag::DateTimeOriginal,
    Tag::DateTimeDigitized,
    Tag::OffsetTime,
    Tag::OffsetTimeOriginal,
    Tag::OffsetTimeDigitized,
];

/// Tags `all` drops: they describe the source's pixels, not the output's
/// (a TIFF's own layout among them, its first directory being its EXIF).
const STALE: [Tag; 13] = [
    Tag::Orientation,
    Tag::PixelXDimension,
    Tag::PixelYDimension,
    Tag::ImageWidth,
    Tag::ImageLength,
    Tag::BitsPerSample,
    Tag::Compression,
    Tag::PhotometricInterpretation,
    Tag::SamplesPerPixel,
    Tag::RowsPerStrip,
    Tag::PlanarConfiguration,
    Tag::YCbCrSubSampling,
    Tag::TransferFunction,
];

/// What `policy` keeps of the EXIF `input` carries, from its TIFF header
/// on: `None` for `strip`, a photo without EXIF, or EXIF that cannot be
/// read or written again (the output then carries none rather than a
/// damaged block).
pub(in crate::engine) fn kept(
    input: &[u8],
    format: InputFormat,
    policy: Metadata,
) -> Option<Vec<u8>> {
    if policy == Metadata::Strip {
        return None;
    }
    let exif = read(input, format)?;
    let mut fields: Vec<Field> = exif
        .fields()
        .filter(|f| f.ifd_num == In::PRIMARY)
        .filter(|f| match policy {
            Metadata::Copyright => AUTHORSHIP.contains(&f.tag),
            _ => !STALE.contains(&f.tag),
        })
        .cloned()
        .collect();
    if policy == Metadata::All {
        fields.push(Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![1]),
        });
    }
    if fields.is_empty() {
        return None;
    }
    write(&fields, exif.little_endian())
}

/// The EXIF a photo carries: libheif finds a HEIF's, jxl-oxide a JPEG XL's,
/// kamadak-exif every other container's that has one (JPEG, PNG, WebP,
/// TIFF).
fn read(input: &[u8], format: InputFormat) -> Option<Exif> {
    match format {
        InputFormat::Heic | InputFormat::Avif => Reader::new().read_raw(heif::exif(input)?).ok(),
        InputFormat::Jxl => Reader::new().read_raw(jpeg_xl(input)?).ok(),
        InputFormat::Jpeg | InputFormat::Png | InputFormat::WebP | InputFormat::Tiff => {
            Reader::new()
                .read_from_container(&mut Cursor::new(input))
                .ok()
        }
        _ => None,
    }
}

/// The EXIF box of a JPEG XL, from its TIFF header on.
fn jpeg_xl(input: &[u8]) -> Option<Vec<u8>> {
    let image = JxlImage::builder().read(input).ok()?;
    match image.aux_boxes().first_exif() {
        Ok(AuxBoxData::Data(exif)) => Some(exif.payload().to_vec()),
        _ => None,
    }
}

fn write(fields: &[Field], little_endian: bool) -> Option<Vec<u8>> {
    let mut writer = Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, little_endian).ok()?;
    Some(out.into_inner())
}
