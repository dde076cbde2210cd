//! Shrink-on-load: when a recipe starts by shrinking an image, decode it
//! already reduced instead of whole, then apply that first op exactly (its geometry computed from the full-size dimensions,
//! so the output has the size the slow path gives).
//!
//! - JPEG, every layout (baseline or progressive, 4:4:4 to 4:2:0, grey,
//!   CMYK/YCCK): libjpeg-turbo scales the inverse DCT to 1/2, 1/4 or 1/8,
//!   so most coefficients are never turned into pixels.
//! - PNG (not interlaced): rows are box-filtered as they inflate, so the
//!   full image is never held, only one row of sums.
//! - WebP (still, lossy or lossless): libwebp rescales rows as it decodes
//!   them (the `libwebp` crate of this workspace).
//! - HEIC and AVIF: libheif cannot decode reduced, but phones embed a
//!   thumbnail; the smallest one at least the op's output is decoded
//!   instead of the photo.
//!
//! Anything else, or a file these decoders refuse, returns `None` and takes
//! the full decoder, which then gives the verdict on it.

mod jpeg;
mod png;
mod webp;

use common::Limits;
use common::probe::{InputFormat, Probe, Shrink, shrink_plan};
use common::recipe::Op;
use image::DynamicImage;
use image::metadata::Orientation;

use super::codec::{self, Decoded};
use super::color::Colours;
use super::{EngineError, geometry};

/// Decodes `input` reduced for its first op, with how that op finishes from
/// it ([`apply_first`]), or `None` when the image cannot be, or need not be,
/// shrunk on load.
pub(super) fn decode_reduced(
    input: &[u8],
    probe: &Probe,
    ops: &[Op],
    limits: &Limits,
) -> Result<Option<(Decoded, Shrink)>, EngineError> {
    // Most recipes do not start by shrinking: tell that before reading any
    // metadata. Either orientation may be the one the ops see.
    let (w, h) = (probe.width, probe.height);
    if shrink_plan(w, h, ops.first()).is_none() && shrink_plan(h, w, ops.first()).is_none() {
        return Ok(None);
    }
    let (orientation, icc) = match probe.format {
        InputFormat::Jpeg if probe.scalable => jpeg::metadata(input),
        InputFormat::Png => png::metadata(input),
        InputFormat::WebP => webp::metadata(input),
        // Planned on the primary image's size as shown, which the probe's
        // (the largest image the file declares, unrotated) need not be.
        InputFormat::Heic | InputFormat::Avif => {
            let thumbnail =
                codec::heif_thumbnail(input, limits, |w, h| shrink_plan(w, h, ops.first()))?;
            return Ok(thumbnail.map(|(plan, decoded)| (decoded, plan)));
        }
        _ => return Ok(None),
    };
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
    let reduced = match probe.format {
        InputFormat::Jpeg => jpeg::decode_scaled(input, need_w, need_h),
        InputFormat::Png => png::decode_reduced(input, need_w, need_h),
        _ => webp::decode_reduced(input, need_w, need_h),
    };
    let Some(mut image) = reduced else {
        return Ok(None);
    };
    image.apply_orientation(orientation);
    let colours = icc.map_or(Colours::Srgb, Colours::Icc);
    Ok(Some((Decoded { image, colours }, plan)))
}

/// The first of `ops` applied, by `plan`, to `img` decoded reduced.
pub(super) fn apply_first(
    img: &DynamicImage,
    plan: Shrink,
    ops: &[Op],
    limits: &Limits,
) -> Result<DynamicImage, EngineError> {
    if let Some(first) = ops.first() {
        let (ow, oh) = match plan {
            Shrink::Exact(w, h) | Shrink::Cover(w, h) => (w, h),
        };
        geometry::check_output(first.name(), ow, oh, limits)?;
    }
    Ok(match plan {
        Shrink::Exact(fw, fh) => geometry::resize_exact(img, fw, fh),
        Shrink::Cover(cw, ch) => geometry::resize_cover(img, cw, ch),
    })
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

/// The largest integer factor that shrinks `w × h` to no less than
/// `min_w × min_h` (1 when none does): what PNG and WebP are reduced by on
/// load, the resize doing the rest.
fn integer_shrink(w: u32, h: u32, min_w: u32, min_h: u32) -> u32 {
    (w / min_w.max(1)).min(h / min_h.max(1)).max(1)
}

/// The orientation an EXIF block gives, upright when none.
fn orientation_of(exif: Option<&[u8]>) -> Orientation {
    exif.and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}
