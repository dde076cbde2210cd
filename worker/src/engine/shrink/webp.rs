//! Still WebPs decoded reduced by libwebp, which rescales rows as it
//! decodes them (through this workspace's `libwebp` crate).

use std::io::Cursor;

use image::DynamicImage;
use image::metadata::Orientation;

/// A WebP's EXIF orientation and ICC profile, from its RIFF chunks.
pub(super) fn metadata(input: &[u8]) -> (Orientation, Option<Vec<u8>>) {
    use image::ImageDecoder;

    let Ok(mut decoder) = image::codecs::webp::WebPDecoder::new(Cursor::new(input)) else {
        return (Orientation::NoTransforms, None);
    };
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    (orientation, decoder.icc_profile().ok().flatten())
}

/// Decodes a still WebP reduced by the largest integer factor that leaves
/// it at least `min_w × min_h`, libwebp averaging the rows as it decodes
/// them. `None` for an animation (the full decoder takes its first frame)
/// or a file libwebp refuses.
pub(super) fn decode_reduced(input: &[u8], min_w: u32, min_h: u32) -> Option<DynamicImage> {
    let features = libwebp::features(input)?;
    let n = super::integer_shrink(features.width, features.height, min_w, min_h);
    if n < 2 {
        return None;
    }
    let (w, h) = (features.width.div_ceil(n), features.height.div_ceil(n));
    let picture = libwebp::decode_scaled(input, w, h)?;
    match picture.channels {
        3 => image::RgbImage::from_raw(w, h, picture.pixels).map(DynamicImage::ImageRgb8),
        _ => image::RgbaImage::from_raw(w, h, picture.pixels).map(DynamicImage::ImageRgba8),
    }
}
