//! Encoding: each format through the library that makes the smallest files
//! at its quality, as libvips does — libjpeg-turbo with optimised Huffman
//! tables, libwebp, libaom through libheif — and PNG through the `image`
//! crate; then the profile and EXIF a recipe keeps, written where each
//! container keeps them (`img-parts` for JPEG, PNG and WebP, libheif for
//! AVIF).

use common::recipe::{Encoding, OutputFormat, Subsampling};
use image::codecs::png::PngEncoder;
use image::{DynamicImage, Rgba};
use img_parts::{Bytes, DynImage, ImageEXIF, ImageICC};
use turbojpeg::{Compressor, PixelFormat, Subsamp};

use super::heif;
use crate::engine::EngineError;

/// What an output carries of its source besides pixels.
#[derive(Debug, Default)]
pub(in crate::engine) struct Embedded {
    /// The ICC profile its samples are in, when they were kept out of sRGB
    /// (`keep_icc`).
    pub icc: Option<Vec<u8>>,
    /// The EXIF the recipe's `metadata` keeps, from its TIFF header on.
    pub exif: Option<Vec<u8>>,
}

/// Encodes `img` as `encoding` says, with `embedded`.
pub(in crate::engine) fn encode(
    img: &DynamicImage,
    encoding: &Encoding,
    embedded: Embedded,
) -> Result<Vec<u8>, EngineError> {
    let file = match encoding.format {
        OutputFormat::Jpeg => jpeg(img, encoding)?,
        OutputFormat::Png => png(img)?,
        OutputFormat::Webp => webp(img, encoding)?,
        OutputFormat::Avif => {
            return heif::encode_avif(&drop_opaque_alpha(img), encoding, &embedded);
        }
    };
    embed(file, embedded)
}

/// `file` (a JPEG, PNG or WebP) with `embedded`'s profile and EXIF, in the
/// segments or chunks its format keeps them in.
fn embed(file: Vec<u8>, embedded: Embedded) -> Result<Vec<u8>, EngineError> {
    if embedded.icc.is_none() && embedded.exif.is_none() {
        return Ok(file);
    }
    let enc = |e: String| EngineError::Encode(format!("embedding metadata: {e}"));
    let mut container = DynImage::from_bytes(file.into())
        .map_err(|e| enc(e.to_string()))?
        .ok_or_else(|| enc("the encoder's output is not a JPEG, PNG or WebP".into()))?;
    container.set_icc_profile(embedded.icc.map(Bytes::from));
    container.set_exif(embedded.exif.map(Bytes::from));
    Ok(container.encoder().bytes().to_vec())
}

fn jpeg(img: &DynamicImage, encoding: &Encoding) -> Result<Vec<u8>, EngineError> {
    let enc = |e: turbojpeg::Error| EngineError::Encode(format!("JPEG: {e}"));
    let flat = flatten_on_white(img);
    let (format, subsamp) = match &flat {
        DynamicImage::ImageLuma8(_) => (PixelFormat::GRAY, Subsamp::Gray),
        _ => match encoding.subsampling() {
            Subsampling::Half => (PixelFormat::RGB, Subsamp::Sub2x2),
            Subsampling::Full => (PixelFormat::RGB, Subsamp::None),
        },
    };
    let mut compressor = Compressor::new().map_err(enc)?;
    compressor
        .set_quality(i32::from(encoding.quality()))
        .map_err(enc)?;
    compressor.set_subsamp(subsamp).map_err(enc)?;
    // Huffman tables fitted to the image: 5–10% smaller for a few percent
    // more time, as libvips' `optimize_coding`.
    compressor.set_optimize(true).map_err(enc)?;
    compressor
        .set_progressive(encoding.progressive)
        .map_err(enc)?;
    let (width, height) = (flat.width() as usize, flat.height() as usize);
    let pixels = flat.as_bytes();
    let image = turbojpeg::Image {
        pixels,
        width,
        pitch: pixels.len() / height.max(1),
        height,
        format,
    };
    compressor.compress_to_vec(image).map_err(enc)
}

fn png(img: &DynamicImage) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    to_8bit(img)
        .write_with_encoder(PngEncoder::new(&mut out))
        .map_err(|e| EngineError::Encode(format!("PNG: {e}")))?;
    Ok(out)
}

fn webp(img: &DynamicImage, encoding: &Encoding) -> Result<Vec<u8>, EngineError> {
    let compression = if encoding.lossless {
        libwebp::Compression::Lossless
    } else {
        libwebp::Compression::Lossy {
            quality: f32::from(encoding.quality()),
        }
    };
    // Three bands for an opaque image: libwebp would otherwise store (and
    // for lossless, spend bits on) an alpha plane of 255s.
    let (pixels, channels) = match drop_opaque_alpha(img) {
        DynamicImage::ImageRgba8(rgba) => (rgba.into_raw(), 4),
        other => (other.to_rgb8().into_raw(), 3),
    };
    libwebp::encode(&pixels, img.width(), img.height(), channels, compression)
        .ok_or_else(|| EngineError::Encode("WebP: libwebp refused the image".into()))
}

/// An 8-bit image: RGBA when some pixel is not opaque, else RGB (or grey).
fn drop_opaque_alpha(img: &DynamicImage) -> DynamicImage {
    if !img.color().has_alpha() {
        return to_8bit(img);
    }
    let rgba = img.to_rgba8();
    if rgba.pixels().all(|p| p[3] == u8::MAX) {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).to_rgb8())
    } else {
        DynamicImage::ImageRgba8(rgba)
    }
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
