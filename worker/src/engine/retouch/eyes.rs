//! Red pupils inside detected faces.
//!
//! Knowing where a face is lets the redness test be loose: only the two eye
//! windows of each face are searched, and a pixel counts as red when it is
//! redder than that face's own skin, not redder than a fixed bar. Flash-lit
//! faces, warm light and moderately red pupils behind glasses all pass; lips,
//! clothes and candles are never taken for pupils, being in no eye window.
//! The faces themselves are looked for only around red spots
//! ([`red_spots`]), so a photo without red costs one pass over its pixels.

use image::{Rgba, RgbaImage};

use super::{bounds, grow_while, stands_alone};
use crate::engine::faces::{Face, Spot};

/// How red a spot must be to make its surroundings worth a face search, by
/// [`spot_redness`]: above flushed skin and orange (a coffee cup, a
/// sunset), below any red pupil seen.
const SPOT_REDNESS: f32 = 0.32;

/// At most this many spots are followed, the largest first: a red polka-dot
/// dress must not cost a face search per dot.
const MAX_SPOTS: usize = 32;

/// Where the eyes of a frontal face lie in its detected box, as fractions
/// (x0, y0, x1, y1): SeetaFace's box runs from the brows to the chin.
const LEFT_EYE: (f32, f32, f32, f32) = (0.05, 0.12, 0.52, 0.52);
const RIGHT_EYE: (f32, f32, f32, f32) = (0.48, 0.12, 0.95, 0.52);

/// The cheeks and nose: the skin a pupil's redness is judged against.
const SKIN: (f32, f32, f32, f32) = (0.2, 0.5, 0.8, 0.75);

/// How much redder than the face's skin (its 90th percentile) a pupil must be.
const MARGIN: f32 = 0.08;

/// A pupil's width against its face's: smaller is a glint or noise, larger
/// is a red frame or a scarf.
const PUPIL_WIDTH: std::ops::RangeInclusive<f32> = 0.015..=0.16;

/// How red a pixel is for its lightness: the red channel's lead over the
/// others, less half the gap between green and blue, as a share of red.
/// The gap is what tells a red pupil (green and blue alike) from a brown
/// iris, an eyebrow or skin (green well above blue), which otherwise lead
/// with red as much. The 30 in the share keeps near-black pixels, whose
/// channels differ by noise, from scoring high.
fn redness(p: &Rgba<u8>) -> f32 {
    let [r, g, b, _] = p.0.map(f32::from);
    (r - g.max(b) - 0.5 * (g - b).abs()) / (r + 30.0)
}

/// Small, roundish, clearly red blobs anywhere in `img`: where a red pupil
/// may be, to look for the face around it.
pub fn red_spots(img: &RgbaImage) -> Vec<Spot> {
    let (w, h) = img.dimensions();
    let is_spot_red = |p: &Rgba<u8>| spot_redness(p) >= SPOT_REDNESS;
    let max_side = (w.max(h) / 10).max(4);
    let mut seen = vec![false; (w * h) as usize];
    let mut spots: Vec<(usize, Spot)> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize;
            if seen[i] || !is_spot_red(img.get_pixel(x, y)) {
                continue;
            }
            seen[i] = true;
            let blob = grow_while(img, (0, 0, w, h), &mut seen, (x, y), is_spot_red);
            let (bx0, by0, bx1, by1) = bounds(&blob);
            let (bw, bh) = (bx1 - bx0 + 1, by1 - by0 + 1);
            let roundish = 2 * bw >= bh && 2 * bh >= bw && bw.max(bh) <= max_side;
            if blob.len() >= 3
                && roundish
                && blob.len() as u32 * 20 >= bw * bh * 9
                && stands_alone(img, (bx0, by0, bx1, by1), is_spot_red, 0.25)
            {
                let spot = Spot {
                    x: (bx0 + bx1) / 2,
                    y: (by0 + by1) / 2,
                    diameter: bw.max(bh),
                };
                spots.push((blob.len(), spot));
            }
        }
    }
    spots.sort_by_key(|(size, _)| std::cmp::Reverse(*size));
    spots
        .into_iter()
        .take(MAX_SPOTS)
        .map(|(_, spot)| spot)
        .collect()
}

/// The redness of a spot worth a face search: as [`redness`] but with the
/// whole gap between green and blue taken off (orange is not a pupil's red,
/// and a photo full of it must not cost a face search per speck), and only
/// for a red channel bright enough (60) that a flash can have lit it.
fn spot_redness(p: &Rgba<u8>) -> f32 {
    let [r, g, b, _] = p.0.map(f32::from);
    if r < 60.0 {
        return 0.0;
    }
    (r - g.max(b) - (g - b).abs()) / (r + 30.0)
}

/// Removes red from the pupils of every face; returns how many pixels changed.
pub fn red_eyes_in_faces(img: &mut RgbaImage, faces: &[Face]) -> usize {
    faces.iter().map(|face| red_eyes_in_face(img, face)).sum()
}

fn red_eyes_in_face(img: &mut RgbaImage, face: &Face) -> usize {
    let (w, h) = img.dimensions();
    let skin = skin_redness(img, face.part(SKIN, w, h));
    let threshold = (skin + MARGIN).max(0.3);
    let soft = (skin + threshold) / 2.0;
    let pupils: Vec<Pupil> = [LEFT_EYE, RIGHT_EYE]
        .into_iter()
        .filter_map(|eye| pupil(img, face, face.part(eye, w, h), threshold))
        .collect();
    pupils
        .iter()
        .map(|pupil| correct(img, pupil, threshold, soft))
        .sum()
}

/// The redness nine in ten skin pixels stay under.
fn skin_redness(img: &RgbaImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> f32 {
    let mut values: Vec<f32> = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .map(|(x, y)| redness(img.get_pixel(x, y)))
        .collect();
    if values.is_empty() {
        return 0.0;
    }
    let at = (values.len() * 9 / 10).min(values.len() - 1);
    *values.select_nth_unstable_by(at, f32::total_cmp).1
}

/// A red pupil found in an eye window: its pixels.
struct Pupil {
    pixels: Vec<(u32, u32)>,
}

/// The red blob in `window` most like a pupil: of a pupil's size for this
/// face, round and filling its circle; the largest when several are.
fn pupil(
    img: &RgbaImage,
    face: &Face,
    window: (u32, u32, u32, u32),
    threshold: f32,
) -> Option<Pupil> {
    let (x0, y0, x1, y1) = window;
    let (ww, wh) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
    let mut seen = vec![false; (ww * wh) as usize];
    let mut best: Option<Pupil> = None;
    for y in y0..y1 {
        for x in x0..x1 {
            let i = ((y - y0) * ww + (x - x0)) as usize;
            if seen[i] || redness(img.get_pixel(x, y)) < threshold {
                continue;
            }
            seen[i] = true;
            let blob = grow_while(img, window, &mut seen, (x, y), |p| redness(p) >= threshold);
            if let Some(p) = as_pupil(blob, face)
                && best
                    .as_ref()
                    .is_none_or(|b| p.pixels.len() > b.pixels.len())
            {
                best = Some(p);
            }
        }
    }
    best
}

fn as_pupil(pixels: Vec<(u32, u32)>, face: &Face) -> Option<Pupil> {
    let (bx0, by0, bx1, by1) = bounds(&pixels);
    let (bw, bh) = ((bx1 - bx0 + 1) as f32, (by1 - by0 + 1) as f32);
    let width = bw.max(bh) / face.width as f32;
    let round = (0.5..=2.0).contains(&(bw / bh));
    // A disc fills π/4 of its box; a red eyelid's crescent much less.
    let filled = pixels.len() as f32 / (bw * bh) >= 0.45;
    (pixels.len() >= 4 && round && filled && PUPIL_WIDTH.contains(&width))
        .then_some(Pupil { pixels })
}

/// Takes the red out of a pupil: its red pixels fully, and the pixels
/// touching it that are half red (redder than `soft`, the antialiased rim
/// the threshold left out) in proportion, so the edge does not show a ring.
/// The glint, not red, stays.
fn correct(img: &mut RgbaImage, pupil: &Pupil, threshold: f32, soft: f32) -> usize {
    let mut changed = 0;
    for &(x, y) in &pupil.pixels {
        changed += usize::from(neutralise(img.get_pixel_mut(x, y), 1.0));
    }
    let (w, h) = img.dimensions();
    let mut rim: Vec<(u32, u32)> = pupil
        .pixels
        .iter()
        .flat_map(|&(x, y)| {
            (y.saturating_sub(1)..=(y + 1).min(h - 1)).flat_map(move |ny| {
                (x.saturating_sub(1)..=(x + 1).min(w - 1)).map(move |nx| (nx, ny))
            })
        })
        .collect();
    rim.sort_unstable();
    rim.dedup();
    for (x, y) in rim {
        let p = img.get_pixel_mut(x, y);
        let red = redness(p);
        if red > soft && red < threshold {
            changed += usize::from(neutralise(p, (red - soft) / (threshold - soft)));
        }
    }
    changed
}

/// Moves red toward the mean of green and blue by `amount` (0..=1); whether
/// the pixel changed.
fn neutralise(p: &mut Rgba<u8>, amount: f32) -> bool {
    let [r, g, b, _] = p.0;
    let target = (f32::from(g) + f32::from(b)) / 2.0;
    let new = (f32::from(r) + (target - f32::from(r)) * amount.clamp(0.0, 1.0)).round() as u8;
    let changed = new < r;
    if changed {
        p.0[0] = new;
    }
    changed
}
