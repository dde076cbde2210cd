//! Codecs: decoding whole (with limits, the colours the file names, EXIF
//! orientation), encoding, and telling a truncated JPEG. Decoding already
//! reduced is [`super::shrink`]'s.
//!
//! - [`heif`]: HEIC and AVIF, both ways, through libheif.
//! - JPEG XL in through jxl-oxide, an `image` decoder like the others.
//! - [`encode`]: every output format and its settings.
//! - [`exif`]: the EXIF block a file carries, and what a recipe keeps of it.

mod encode;
mod exif;
mod heif;

use std::io::Cursor;

use common::Limits;
use common::probe::{Decoder, InputFormat};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};
use jxl_oxide::JxlImage;
use jxl_oxide::integration::JxlDecoder;

use super::EngineError;
use super::color::Colours;

pub(super) use encode::{Embedded, encode};
pub(super) use exif::kept as kept_exif;
pub(super) use heif::decode_thumbnail as heif_thumbnail;

/// An image as decoded: upright, its samples still in the colours its file
/// names.
pub(super) struct Decoded {
    pub image: DynamicImage,
    pub colours: Colours,
}

/// Decodes `input` whole, oriented upright.
pub(super) fn decode(
    input: &[u8],
    format: InputFormat,
    limits: &Limits,
) -> Result<Decoded, EngineError> {
    let corrupt = |e: image::ImageError| EngineError::Corrupt(e.to_string());
    match format.decoder() {
        Decoder::Image(format) => {
            let mut reader = ImageReader::with_format(Cursor::new(input), format);
            reader.limits(image_limits(limits));
            let mut decoder = reader.into_decoder().map_err(corrupt)?;
            let orientation = decoder.orientation().map_err(corrupt)?;
            decode_turned(decoder, orientation)
        }
        Decoder::JpegXl => {
            // jxl-oxide renders a cut file as far as it goes, as a
            // progressive viewer would; a truncated upload must fail instead.
            let parsed = JxlImage::builder()
                .read(input)
                .map_err(|e| EngineError::Corrupt(format!("JPEG XL: {e}")))?;
            if parsed.num_loaded_keyframes() == 0 {
                return Err(EngineError::Corrupt(
                    "JPEG XL: the file ends before its image does".into(),
                ));
            }
            let mut decoder = JxlDecoder::new(input).map_err(corrupt)?;
            decoder.set_limits(image_limits(limits)).map_err(corrupt)?;
            // Its renderer applies the header's orientation itself; the
            // decoder's, read from the EXIF box as `image` does for every
            // format, would turn the picture a second time.
            let decoded = decode_turned(decoder, Orientation::NoTransforms)?;
            Ok(Decoded {
                image: without_float(decoded.image),
                ..decoded
            })
        }
        Decoder::Heif => heif::decode(input, limits),
    }
}

/// `img` with float samples (an HDR JPEG XL) as 16-bit ones, which every
/// op and encoder takes.
fn without_float(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageRgb32F(_) => DynamicImage::ImageRgb16(img.to_rgb16()),
        DynamicImage::ImageRgba32F(_) => DynamicImage::ImageRgba16(img.to_rgba16()),
        img => img,
    }
}

/// What an `image` decoder may make of a file within `limits`.
fn image_limits(limits: &Limits) -> image::Limits {
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_dimension);
    image_limits.max_image_height = Some(limits.max_dimension);
    // RGBA16 of the largest allowed image, plus decoder scratch.
    image_limits.max_alloc = Some(limits.max_pixels * 8 + 64 * 1024 * 1024);
    image_limits
}

/// The image `decoder` makes, turned by `orientation`.
fn decode_turned(
    mut decoder: impl ImageDecoder,
    orientation: Orientation,
) -> Result<Decoded, EngineError> {
    let corrupt = |e: image::ImageError| EngineError::Corrupt(e.to_string());
    let colours = decoder
        .icc_profile()
        .ok()
        .flatten()
        .map_or(Colours::Srgb, Colours::Icc);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    Ok(Decoded { image, colours })
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
