//! Codecs: decoding (with limits, ICC profiles to sRGB, EXIF orientation,
//! JPEGs shrunk on load), encoding, and telling a truncated JPEG.

use std::io::Cursor;

use common::Limits;
use common::probe::{Probe, Shrink, dct_scale, shrink_plan};
use common::recipe::{Op, OutputFormat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Rgba};

use super::{EngineError, color, geometry};

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

/// When the first op shrinks a JPEG at least twofold, decodes it already
/// reduced by the DCT and applies that op exactly (geometry computed from the
/// full-size dimensions, so the output matches the slow path's size).
pub(super) fn shrink_on_load(
    input: &[u8],
    probe: &Probe,
    ops: &[Op],
    limits: &Limits,
) -> Result<Option<DynamicImage>, EngineError> {
    if probe.format != ImageFormat::Jpeg {
        return Ok(None);
    }
    let orientation = jpeg_orientation(input);
    let transposed = transposes(orientation);
    // Oriented dimensions, as the ops see them.
    let (w, h) = if transposed {
        (probe.height, probe.width)
    } else {
        (probe.width, probe.height)
    };
    let Some((plan, need_w, need_h)) = shrink_plan(w, h, ops.first()) else {
        return Ok(None);
    };
    let (need_w, need_h) = if transposed {
        (need_h, need_w)
    } else {
        (need_w, need_h)
    };
    let Some((mut img, icc)) = decode_jpeg_scaled(input, need_w, need_h, limits.max_pixels) else {
        return Ok(None);
    };
    if let Some(icc) = icc {
        img = color::to_srgb(img, &icc);
    }
    img.apply_orientation(orientation);
    if let Some(first) = ops.first() {
        let (ow, oh) = match plan {
            Shrink::Exact(w, h) | Shrink::Cover(w, h) => (w, h),
        };
        geometry::check_output(first.name(), ow, oh, limits)?;
    }
    Ok(Some(match plan {
        Shrink::Exact(fw, fh) => geometry::resize_exact(&img, fw, fh),
        Shrink::Cover(cw, ch) => geometry::resize_cover(&img, cw, ch),
    }))
}

/// Whether an orientation swaps width and height.
fn transposes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The EXIF orientation of a JPEG, read without copying or decoding it.
fn jpeg_orientation(input: &[u8]) -> Orientation {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(input));
    if decoder.read_info().is_err() {
        return Orientation::NoTransforms;
    }
    decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// Decodes a JPEG at the smallest DCT scale (1/1, 1/2, 1/4, 1/8) that is
/// still at least `min_w × min_h` in stored (not yet oriented) pixels.
/// `None` when the scale would not shrink or the colour model needs the
/// full decoder (CMYK, 16-bit): the caller then decodes normally. Returns the
/// image and its ICC profile, if any.
fn decode_jpeg_scaled(
    input: &[u8],
    min_w: u32,
    min_h: u32,
    max_pixels: u64,
) -> Option<(DynamicImage, Option<Vec<u8>>)> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(input));
    decoder.set_max_decoding_buffer_size(usize::try_from(max_pixels.saturating_mul(4)).ok()?);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if dct_scale(w, h, min_w, min_h) == 1 {
        return None;
    }
    let req = |v: u32| u16::try_from(v.max(1)).ok();
    let (sw, sh) = decoder.scale(req(min_w)?, req(min_h)?).ok()?;
    let pixels = decoder.decode().ok()?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let img = match decoder.info()?.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            image::RgbImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageRgb8)
        }
        jpeg_decoder::PixelFormat::L8 => {
            image::GrayImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageLuma8)
        }
        _ => None,
    }?;
    Some((img, decoder.icc_profile()))
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
