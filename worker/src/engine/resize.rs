//! Resizing: SIMD convolution (fast_image_resize, Lanczos3, alpha
//! premultiplied), and shrink-on-load for JPEG — decoding at 1/2, 1/4 or 1/8
//! scale straight from the DCT when the result is to be much smaller.

use std::io::Cursor;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, imageops};

/// `img` resized to exactly `w × h`.
pub fn resize_exact(img: &DynamicImage, w: u32, h: u32) -> DynamicImage {
    resize_with(img, w, h, false)
}

/// `img` scaled to cover `w × h`, then the centre `w × h` kept.
pub fn resize_cover(img: &DynamicImage, w: u32, h: u32) -> DynamicImage {
    resize_with(img, w, h, true)
}

fn resize_with(img: &DynamicImage, w: u32, h: u32, cover: bool) -> DynamicImage {
    if (img.width(), img.height()) == (w, h) {
        return img.clone();
    }
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if cover {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    let mut dst = DynamicImage::new(w, h, img.color());
    match Resizer::new().resize(img, &mut dst, &options) {
        Ok(()) => dst,
        // Pixel types the SIMD resizer lacks take the portable path.
        Err(_) if cover => img.resize_to_fill(w, h, imageops::FilterType::Lanczos3),
        Err(_) => img.resize_exact(w, h, imageops::FilterType::Lanczos3),
    }
}

/// Whether an orientation swaps width and height.
pub fn transposes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// What a JPEG's headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JpegHeader {
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel the decoder produces.
    pub bytes_per_pixel: u8,
    /// Whether [`decode_jpeg_scaled`] can decode it at a reduced scale.
    pub scalable: bool,
}

/// Reads a JPEG's frame header.
pub fn jpeg_header(input: &[u8]) -> Result<JpegHeader, String> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(input));
    decoder.read_info().map_err(|e| e.to_string())?;
    let info = decoder.info().ok_or("JPEG has no frame header")?;
    let (bytes_per_pixel, scalable) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (1, true),
        jpeg_decoder::PixelFormat::RGB24 => (3, true),
        jpeg_decoder::PixelFormat::L16 => (2, false),
        jpeg_decoder::PixelFormat::CMYK32 => (4, false),
    };
    Ok(JpegHeader {
        width: u32::from(info.width),
        height: u32::from(info.height),
        bytes_per_pixel,
        scalable,
    })
}

/// The divisor (1, 2, 4 or 8) [`decode_jpeg_scaled`] decodes a `w × h`
/// JPEG at when asked for at least `min_w × min_h`; mirrors the decoder's
/// own choice, which is satisfied when either side is.
pub fn dct_scale(w: u32, h: u32, min_w: u32, min_h: u32) -> u32 {
    if min_w.saturating_mul(2) > w || min_h.saturating_mul(2) > h {
        return 1;
    }
    let scaled = |len: u32, eighths: u32| (len * eighths).div_ceil(8);
    [1, 2, 4]
        .into_iter()
        .find(|&eighths| scaled(w, eighths) >= min_w || scaled(h, eighths) >= min_h)
        .map_or(1, |eighths| 8 / eighths)
}

/// The EXIF orientation of a JPEG, read without copying or decoding it.
pub fn jpeg_orientation(input: &[u8]) -> Orientation {
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
pub fn decode_jpeg_scaled(
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
