//! What a tooth, a lip and skin look like, judged in LAB, where "bright,
//! not red, not too yellow" is a few thresholds. Both the mouth finder and
//! the whitening's mask judge pixels by these, so they agree on what a
//! tooth is.

use image::RgbaImage;
use palette::{IntoColor, Lab, Srgb};

pub(super) fn to_lab(p: &image::Rgba<u8>) -> Lab {
    let [r, g, b, _] = p.0;
    Srgb::new(r, g, b).into_format::<f32>().into_color()
}

pub(super) fn from_lab(lab: Lab, alpha: u8) -> image::Rgba<u8> {
    let rgb: Srgb = lab.into_color();
    let rgb: Srgb<u8> = rgb.into_format();
    image::Rgba([rgb.red, rgb.green, rgb.blue, alpha])
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The bars a mouth's colours are judged by. In a face whose skin is known
/// they follow that skin: in a smile in shadow the teeth are darker and the
/// lips less red than [`WELL_LIT`]'s bars.
#[derive(Clone, Copy)]
pub(super) struct Bars {
    /// The lightness (L*) from which a colour starts to count as a tooth.
    teeth_from: f32,
    /// The redness (a*) from which a colour counts as lip.
    lips_from: f32,
    /// The lightness under which nothing counts as lip (shadow, the mouth's
    /// inside).
    lips_lightest_dark: f32,
}

/// A well-lit face's mouth, and the bars when no face is known.
pub(super) const WELL_LIT: Bars = Bars {
    teeth_from: 60.0,
    lips_from: 15.0,
    lips_lightest_dark: 35.0,
};

impl Bars {
    /// For a face whose cheeks have median lightness `skin_l` and redness
    /// `skin_a`: teeth at most a little darker than the skin around them,
    /// lips redder than it.
    pub(super) fn face((skin_l, skin_a): (f32, f32)) -> Self {
        Self {
            teeth_from: (skin_l - 12.0).clamp(35.0, WELL_LIT.teeth_from),
            lips_from: (skin_a + 4.0).clamp(8.0, WELL_LIT.lips_from),
            lips_lightest_dark: (skin_l - 30.0).clamp(20.0, WELL_LIT.lips_lightest_dark),
        }
    }
}

/// How tooth-like a colour is: bright, and with little red (a*) even when
/// yellow. Lips and gums are too red, skin too red for its lightness, so they
/// score (nearly) zero; yellowish teeth still score high.
pub(super) fn tooth_weight(lab: &Lab, bars: Bars) -> f32 {
    let chroma = (lab.a * lab.a + lab.b * lab.b).sqrt();
    smoothstep(bars.teeth_from, bars.teeth_from + 12.0, lab.l)
        * (1.0 - smoothstep(3.0, 9.0, lab.a))
        * (1.0 - smoothstep(24.0, 34.0, chroma))
}

/// Skin-like: light to mid tones, warm, neither grey nor strongly saturated.
pub(super) fn is_skin(lab: &Lab) -> bool {
    (40.0..92.0).contains(&lab.l)
        && (4.0..22.0).contains(&lab.a)
        && (8.0..30.0).contains(&lab.b)
        && lab.b > 0.5 * lab.a
}

/// Lip-like: clearly red-pink, more red than yellow, mid lightness.
pub(super) fn is_lip(lab: &Lab, bars: Bars) -> bool {
    lab.a > bars.lips_from && lab.b < 1.2 * lab.a && lab.l > bars.lips_lightest_dark && lab.l < 80.0
}

/// The median lightness (L*) and redness (a*) of an area, (x0, y0, x1, y1),
/// unless it is empty.
pub(super) fn median_skin(
    img: &RgbaImage,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
) -> Option<(f32, f32)> {
    let labs: Vec<Lab> = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .map(|(x, y)| to_lab(img.get_pixel(x, y)))
        .collect();
    if labs.is_empty() {
        return None;
    }
    let median = |mut v: Vec<f32>| {
        let mid = v.len() / 2;
        *v.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    Some((
        median(labs.iter().map(|lab| lab.l).collect()),
        median(labs.iter().map(|lab| lab.a).collect()),
    ))
}
