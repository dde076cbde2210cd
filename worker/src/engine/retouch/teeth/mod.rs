//! Teeth whitening: a feathered mask of tooth-like pixels inside a mouth's
//! box, whose yellowness is lowered and lightness lifted. The mask never
//! reaches past the box, so nothing outside the mouth changes.

mod colours;
mod mouth;

pub use mouth::find_mouth;

use common::recipe::Region;
use image::RgbaImage;

use super::clip;
use crate::engine::faces::Face;
use colours::{Bars, WELL_LIT, from_lab, to_lab, tooth_weight};
use mouth::mouth_of;

/// Whitens teeth inside `region` (or an automatically found mouth):
/// lowers yellowness (LAB b*) and lifts lightness of bright, low-saturation
/// pixels with a feathered mask. Returns the area treated, if any.
pub fn teeth_whiten(img: &mut RgbaImage, strength: f32, region: Option<Region>) -> Option<Region> {
    let region = region.or_else(|| find_mouth(img))?;
    whiten(img, strength, region, WELL_LIT)
}

/// Whitens the smile of every face that shows teeth; returns the areas
/// treated.
pub(super) fn whiten_faces(img: &mut RgbaImage, strength: f32, faces: &[Face]) -> Vec<Region> {
    faces
        .iter()
        .filter_map(|face| {
            let (bars, mouth) = mouth_of(img, face)?;
            whiten(img, strength, mouth, bars)
        })
        .collect()
}

fn whiten(img: &mut RgbaImage, strength: f32, region: Region, bars: Bars) -> Option<Region> {
    let (w, h) = img.dimensions();
    let (x0, y0, x1, y1) = clip(region, w, h);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    let (rw, rh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let mut labs = Vec::with_capacity(rw * rh);
    let mut weight = Vec::with_capacity(rw * rh);
    for y in y0..y1 {
        for x in x0..x1 {
            let lab = to_lab(img.get_pixel(x, y));
            weight.push(tooth_weight(&lab, bars));
            labs.push(lab);
        }
    }
    // Feather the mask (two 3×3 box passes) without reaching past the region.
    for _ in 0..2 {
        weight = box_blur(&weight, rw, rh);
    }
    for (i, (lab, wgt)) in labs.into_iter().zip(weight).enumerate() {
        let k = (strength * wgt).clamp(0.0, 1.0);
        if k <= 0.002 {
            continue;
        }
        let mut lab = lab;
        if lab.b > 0.0 {
            lab.b *= 1.0 - 0.85 * k;
        }
        lab.a *= 1.0 - 0.3 * k;
        lab.l += (100.0 - lab.l) * 0.25 * k;
        let (x, y) = (x0 + (i % rw) as u32, y0 + (i / rw) as u32);
        let alpha = img.get_pixel(x, y).0[3];
        img.put_pixel(x, y, from_lab(lab, alpha));
    }
    Some(region)
}

fn box_blur(v: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for y in 0..h {
        for x in 0..w {
            let (mut sum, mut n) = (0.0, 0.0);
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    sum += v[yy * w + xx];
                    n += 1.0;
                }
            }
            // A pixel that is not tooth-like stays out of the mask entirely:
            // feathering softens edges, it does not spill onto lips.
            out[y * w + x] = if v[y * w + x] > 0.0 { sum / n } else { 0.0 };
        }
    }
    out
}
