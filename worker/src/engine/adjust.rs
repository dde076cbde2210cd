//! Adjustments of every pixel: blur, sharpen, contrast, brightness and
//! recolouring (grayscale, sepia, hue rotation, tint), each blended with the
//! original by its amount.

use common::recipe::{RecolorMode, parse_color};
use image::{DynamicImage, Rgba, RgbaImage};

use super::{EngineError, op_error};

/// Gaussian blur of `sigma` pixels (none at 0).
pub(super) fn blur(img: DynamicImage, sigma: f32) -> DynamicImage {
    if sigma <= 0.0 { img } else { img.blur(sigma) }
}

/// Unsharp mask; `amount` 1 is a moderate sharpening (none at 0).
pub(super) fn sharpen(img: DynamicImage, amount: f32) -> DynamicImage {
    if amount <= 0.0 {
        img
    } else {
        img.unsharpen(1.0, (10.0 / amount).clamp(0.0, 255.0) as i32)
    }
}

/// Contrast by `amount` in -1..1 (unchanged at 0).
pub(super) fn contrast(img: DynamicImage, amount: f32) -> DynamicImage {
    if amount == 0.0 {
        img
    } else {
        img.adjust_contrast(amount * 100.0)
    }
}

/// Brightness by `amount` in -1..1 of the full range.
pub(super) fn brightness(img: DynamicImage, amount: f32) -> DynamicImage {
    img.brighten((amount * 255.0).round() as i32)
}

/// Recolours by `mode`, blended with the original by `amount` (default 1).
pub(super) fn recolor(
    img: DynamicImage,
    mode: RecolorMode,
    degrees: Option<f32>,
    color: Option<&str>,
    amount: Option<f32>,
) -> Result<DynamicImage, EngineError> {
    let amount = amount.unwrap_or(1.0);
    Ok(match mode {
        RecolorMode::Grayscale => blend_map(img, amount, |[r, g, b]| {
            let l = luma(r, g, b);
            [l, l, l]
        }),
        RecolorMode::Sepia => blend_map(img, amount, |[r, g, b]| {
            [
                0.393 * r + 0.769 * g + 0.189 * b,
                0.349 * r + 0.686 * g + 0.168 * b,
                0.272 * r + 0.534 * g + 0.131 * b,
            ]
        }),
        RecolorMode::HueRotate => {
            let rotated = img.huerotate(degrees.unwrap_or(0.0).round() as i32);
            if amount >= 1.0 {
                rotated
            } else {
                mix(&img, &rotated, amount)
            }
        }
        RecolorMode::Tint => {
            let [tr, tg, tb] =
                parse_color(color.unwrap_or("#000000")).map_err(|(_, m)| op_error("recolor", m))?;
            let tint = [f32::from(tr), f32::from(tg), f32::from(tb)];
            blend_map(img, amount, move |[r, g, b]| {
                let l = luma(r, g, b) / 255.0;
                [tint[0] * l, tint[1] * l, tint[2] * l]
            })
        }
    })
}

fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// Applies `f` to every pixel's RGB and blends it with the original by `amount`.
fn blend_map(img: DynamicImage, amount: f32, f: impl Fn([f32; 3]) -> [f32; 3]) -> DynamicImage {
    let mut rgba = img.into_rgba8();
    for Rgba(p) in rgba.pixels_mut() {
        let src = [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])];
        let dst = f(src);
        for c in 0..3 {
            p[c] = (src[c] + (dst[c] - src[c]) * amount)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
    DynamicImage::ImageRgba8(rgba)
}

fn mix(a: &DynamicImage, b: &DynamicImage, amount: f32) -> DynamicImage {
    let a = a.to_rgba8();
    let b = b.to_rgba8();
    let out = RgbaImage::from_fn(a.width(), a.height(), |x, y| {
        let (pa, pb) = (a.get_pixel(x, y), b.get_pixel(x, y));
        let mut p = *pa;
        for c in 0..3 {
            let v = f32::from(pa[c]) + (f32::from(pb[c]) - f32::from(pa[c])) * amount;
            p[c] = v.round().clamp(0.0, 255.0) as u8;
        }
        p
    });
    DynamicImage::ImageRgba8(out)
}
