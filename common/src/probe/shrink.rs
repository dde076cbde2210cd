//! Shrinking on load: when a recipe's first op lets a JPEG be decoded
//! already reduced (libjpeg's DCT scaling), and to what size.

use crate::recipe::{Fit, Op};

/// How the first op is applied to a JPEG decoded already reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shrink {
    /// Resize to exactly this size.
    Exact(u32, u32),
    /// Resize to cover this size, keeping the centre.
    Cover(u32, u32),
}

/// When `op`, the first of a recipe, may shrink an image of `w × h`
/// (oriented) pixels on load: how to apply it, and the least size
/// (oriented) to decode at.
pub fn shrink_plan(w: u32, h: u32, op: Option<&Op>) -> Option<(Shrink, u32, u32)> {
    match op? {
        Op::Thumbnail { width, height } if w > *width || h > *height => {
            let (fw, fh) = fit_inside(w, h, *width, *height);
            Some((Shrink::Exact(fw, fh), fw, fh))
        }
        Op::Resize {
            width,
            height,
            fit: Fit::Inside,
        } => {
            let (fw, fh) = fit_inside(w, h, *width, *height);
            Some((Shrink::Exact(fw, fh), fw, fh))
        }
        Op::Resize {
            width,
            height,
            fit: Fit::Fill,
        } => Some((Shrink::Exact(*width, *height), *width, *height)),
        Op::Resize {
            width,
            height,
            fit: Fit::Cover,
        } => {
            let scale = f64::max(
                f64::from(*width) / f64::from(w),
                f64::from(*height) / f64::from(h),
            );
            let cw = (f64::from(w) * scale).ceil() as u32;
            let ch = (f64::from(h) * scale).ceil() as u32;
            Some((Shrink::Cover(*width, *height), cw, ch))
        }
        _ => None,
    }
}

/// Size that fits `(w, h)` inside `(bw, bh)` keeping the aspect ratio.
pub fn fit_inside(w: u32, h: u32, bw: u32, bh: u32) -> (u32, u32) {
    let scale = f64::min(f64::from(bw) / f64::from(w), f64::from(bh) / f64::from(h));
    let nw = (f64::from(w) * scale).round().max(1.0) as u32;
    let nh = (f64::from(h) * scale).round().max(1.0) as u32;
    (nw.min(bw), nh.min(bh))
}

/// The divisor (1, 2, 4 or 8) a JPEG of `w × h` is decoded at when asked for
/// at least `min_w × min_h`: the largest that leaves both sides at least as
/// large as asked, so the resize after it only ever shrinks. 1 when the
/// request is not a twofold shrink.
pub fn dct_scale(w: u32, h: u32, min_w: u32, min_h: u32) -> u32 {
    if min_w.saturating_mul(2) > w || min_h.saturating_mul(2) > h {
        return 1;
    }
    let scaled = |len: u32, eighths: u32| (len * eighths).div_ceil(8);
    [1, 2, 4]
        .into_iter()
        .find(|&eighths| scaled(w, eighths) >= min_w && scaled(h, eighths) >= min_h)
        .map_or(1, |eighths| 8 / eighths)
}
