//! Codecs: decoding whole (with limits, ICC profiles to sRGB, EXIF
//! orientation), encoding, and telling a truncated JPEG. Decoding already
//! reduced is [`super::shrink`]'s.

use std::io::Cursor;

use common::Limits;
use common::recipe::OutputFormat;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Rgba};

use super::{EngineError, color};

/// Decodes `input` whole, converted to sRGB and oriented upright.
pub(super) fn decode(
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

/// Encodes `img` as `format` (`quality` for JPEG).
pub(super) fn encode(
    img: &DynamicImage,
    format: OutputFormat,
    quality: u8,
) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    let enc = |e: image::ImageError| EngineError::Encode(e.to_string());
    match format {
        OutputFormat::Jpeg => {
            let rgb = flatten_on_white(img);
            JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(&rgb)
                .map_err(enc)?;
        }
        OutputFormat::Png => {
            let img = to_8bit(img);
            img.write_with_encoder(PngEncoder::new(&mut out))
                .map_err(enc)?;
        }
        OutputFormat::Webp => {
            // The `image` crate encodes lossless WebP only, so quality is unused.
            let rgba = img.to_rgba8();
            rgba.write_with_encoder(WebPEncoder::new_lossless(&mut out))
                .map_err(enc)?;
        }
    }
    Ok(out)
}

fn to_8bit(img: &DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => img.clone(),
        _ if img.color().has_alpha() => DynamicImage::ImageRgba8(img.to_rgba8()),
        _ => DynamicImage::ImageRgb8(img.to_rgb8()),
    }
}

/// JPEG has no alpha: composite onto white rather than letting
/// transparent pixels turn black.
fn flatten_on_white(img: &DynamicImage) -> DynamicImage {
    if !img.color().has_alpha() {
        return match img {
            DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img.clone(),
            _ => DynamicImage::ImageRgb8(img.to_rgb8()),
        };
    }
    let rgba = img.to_rgba8();
    let rgb = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let Rgba([r, g, b, a]) = *rgba.get_pixel(x, y);
        let a = u16::from(a);
        let over = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([over(r), over(g), over(b)])
    });
    DynamicImage::ImageRgb8(rgb)
}
