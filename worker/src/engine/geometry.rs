//! Geometry: thumbnail, resize (SIMD convolution, Lanczos3, alpha
//! premultiplied, by `fast_image_resize`), crop (by rectangle, or by aspect
//! and gravity), rotate and flip. Each checks the image it is about to make
//! against the output pixel cap first.

use common::Limits;
use common::probe::fit_inside;
use common::recipe::{Axis, Fit, Gravity, parse_aspect};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, imageops};

use super::{EngineError, op_error, smart};

/// Refuses an op that would make an image over the output pixel cap,
/// before it allocates it.
pub(super) fn check_output(
    op: &'static str,
    w: u32,
    h: u32,
    limits: &Limits,
) -> Result<(), EngineError> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(op_error(
            op,
            format!(
                "would make a {w}×{h} image ({pixels} pixels), over the limit of {} pixels \
                 (DARKROOM_MAX_PIXELS)",
                limits.max_pixels
            ),
        ));
    }
    Ok(())
}

/// Fits the image inside `width × height`; never enlarges.
pub(super) fn thumbnail(
    img: DynamicImage,
    width: u32,
    height: u32,
    limits: &Limits,
) -> Result<DynamicImage, EngineError> {
    let (w, h) = (img.width(), img.height());
    if w <= width && h <= height {
        return Ok(img);
    }
    let (nw, nh) = fit_inside(w, h, width, height);
    check_output("thumbnail", nw, nh, limits)?;
    Ok(resize_exact(&img, nw, nh))
}

/// Resizes to `width × height` as `fit` says.
pub(super) fn resize(
    img: DynamicImage,
    width: u32,
    height: u32,
    fit: Fit,
    limits: &Limits,
) -> Result<DynamicImage, EngineError> {
    let (nw, nh) = match fit {
        Fit::Inside => fit_inside(img.width(), img.height(), width, height),
        Fit::Fill | Fit::Cover => (width, height),
    };
    check_output("resize", nw, nh, limits)?;
    Ok(match fit {
        Fit::Cover => resize_cover(&img, nw, nh),
        Fit::Fill | Fit::Inside => resize_exact(&img, nw, nh),
    })
}

/// What a crop keeps: a rectangle, or the largest one of an aspect.
pub(super) enum CropBy<'a> {
    Rect {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    },
    Aspect {
        aspect: &'a str,
        gravity: Gravity,
    },
}

/// Keeps the part of the image `by` names; a rectangle reaching past the
/// edge is clipped to the image, as imgproxy and libvips do.
pub(super) fn crop(
    img: DynamicImage,
    by: CropBy<'_>,
    limits: &Limits,
) -> Result<DynamicImage, EngineError> {
    let (w, h) = (img.width(), img.height());
    let (cx, cy, cw, ch) = match by {
        CropBy::Aspect { aspect, gravity } => {
            let (aw, ah) = parse_aspect(aspect).map_err(|(_, m)| op_error("crop", m))?;
            aspect_rect(&img, aw, ah, gravity)
        }
        CropBy::Rect {
            x,
            y,
            width,
            height,
        } => (x, y, width, height),
    };
    if cx >= w || cy >= h {
        return Err(op_error(
            "crop",
            format!("origin ({cx},{cy}) is outside the {w}×{h} image"),
        ));
    }
    let (cw, ch) = (cw.min(w - cx), ch.min(h - cy));
    check_output("crop", cw, ch, limits)?;
    Ok(img.crop_imm(cx, cy, cw, ch))
}

pub(super) fn rotate(
    img: DynamicImage,
    degrees: u32,
    limits: &Limits,
) -> Result<DynamicImage, EngineError> {
    check_output("rotate", img.height(), img.width(), limits)?;
    Ok(match degrees {
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => return Err(op_error("rotate", "degrees must be 90, 180 or 270")),
    })
}

pub(super) fn flip(img: DynamicImage, axis: Axis) -> DynamicImage {
    match axis {
        Axis::Horizontal => img.fliph(),
        Axis::Vertical => img.flipv(),
    }
}

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

/// The largest `aw:ah` rectangle inside the image, placed by `gravity`.
fn aspect_rect(img: &DynamicImage, aw: u32, ah: u32, gravity: Gravity) -> (u32, u32, u32, u32) {
    let (w, h) = (img.width(), img.height());
    let (cw, ch) = aspect_size(w, h, aw, ah);
    let (mx, my) = ((w - cw) / 2, (h - ch) / 2);
    match gravity {
        Gravity::Center => (mx, my, cw, ch),
        Gravity::North => (mx, 0, cw, ch),
        Gravity::South => (mx, h - ch, cw, ch),
        Gravity::West => (0, my, cw, ch),
        Gravity::East => (w - cw, my, cw, ch),
        Gravity::Smart => {
            let (x, y) = smart::smart_origin(img, cw, ch);
            (x, y, cw, ch)
        }
    }
}

/// Size of the largest `aw:ah` rectangle inside `w×h`.
fn aspect_size(w: u32, h: u32, aw: u32, ah: u32) -> (u32, u32) {
    let (cw, ch) = if u64::from(w) * u64::from(ah) > u64::from(h) * u64::from(aw) {
        ((u64::from(h) * u64::from(aw) / u64::from(ah)) as u32, h)
    } else {
        (w, (u64::from(w) * u64::from(ah) / u64::from(aw)) as u32)
    };
    (cw.clamp(1, w), ch.clamp(1, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspect_rect_is_largest_and_placed_by_gravity() {
        let img = DynamicImage::new_rgb8(1600, 1000);
        assert_eq!(
            aspect_rect(&img, 16, 9, Gravity::Center),
            (0, 50, 1600, 900)
        );
        assert_eq!(
            aspect_rect(&img, 16, 9, Gravity::South),
            (0, 100, 1600, 900)
        );
        let square = DynamicImage::new_rgb8(1000, 1000);
        assert_eq!(aspect_rect(&square, 1, 2, Gravity::West), (0, 0, 500, 1000));
        assert_eq!(
            aspect_rect(&square, 1, 2, Gravity::East),
            (500, 0, 500, 1000)
        );
    }
}
