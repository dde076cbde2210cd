//! Codecs: decoding whole (with limits, ICC profiles to sRGB, EXIF
//! orientation), encoding, and telling a truncated JPEG. Decoding already
//! reduced is [`super::shrink`]'s.
//!
//! - [`heif`]: HEIC and AVIF, both ways, through libheif.
//! - [`encode`]: every output format and its settings.

mod encode;
mod heif;

use std::io::Cursor;

use common::Limits;
use common::probe::InputFormat;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::{EngineError, color};

pub(super) use encode::encode;

/// Decodes `input` whole, converted to sRGB and oriented upright.
pub(super) fn decode(
    input: &[u8],
    format: InputFormat,
    limits: &Limits,
) -> Result<DynamicImage, EngineError> {
    match format.image_format() {
        Some(format) => decode_with_image_crate(input, format, limits),
        None => heif::decode(input, limits),
    }
}

fn decode_with_image_crate(
    input: &[u8],
    format: ImageFormat,
    limits: &Limits,
) -> Result<DynamicImage, EngineError> {
    let mut reader = ImageReader::with_format(Cursor::new(input), format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_dimension);
    image_limits.max_image_height = Some(limits.max_dimension);
    // RGBA16 of the largest allowed image, plus decoder scratch.
    image_limits.max_alloc = Some(limits.max_pixels * 8 + 64 * 1024 * 1024);
    reader.limits(image_limits);
    let corrupt = |e: image::ImageError| EngineError::Corrupt(e.to_string());
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let orientation = decoder.orientation().map_err(corrupt)?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if let Some(icc) = icc {
        img = color::to_srgb(img, &icc);
    }
    img.apply_orientation(orientation);
    Ok(img)
}

/// Whether a JPEG's main image reaches its end-of-image marker.
///
/// Walks the marker segments up to the first start-of-scan, so markers inside
/// an EXIF thumbnail are skipped, then looks for EOI in the entropy-coded data,
/// where a literal 0xFF is always stuffed and cannot fake one.
pub(super) fn jpeg_is_complete(data: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            return false;
        }
        let marker = data[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if marker == 0xDA {
            // EOI is almost always at the very end (trailers are rare and
            // short), so search backwards.
            let scan = &data[(i + 2 + len).min(data.len())..];
            return scan.windows(2).rev().any(|w| w == [0xFF, 0xD9]);
        }
        i += 2 + len;
    }
    false
}
