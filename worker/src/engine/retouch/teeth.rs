//! Teeth whitening, and the mouth finder it uses when no region is given.
//! Colours are judged in LAB, where "bright, not red, not too yellow" is a
//! few thresholds.

use common::recipe::Region;
use image::RgbaImage;
use palette::{IntoColor, Lab, Srgb};

use super::clip;
use crate::engine::faces::Face;

fn to_lab(p: &image::Rgba<u8>) -> Lab {
    let [r, g, b, _] = p.0;
    Srgb::new(r, g, b).into_format::<f32>().into_color()
}

fn from_lab(lab: Lab, alpha: u8) -> image::Rgba<u8> {
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
struct Bars {
    /// The lightness (L*) from which a colour starts to count as a tooth.
    teeth_from: f32,
    /// The redness (a*) from which a colour counts as lip.
    lips_from: f32,
    /// The lightness under which nothing counts as lip (shadow, the mouth's
    /// inside).
    lips_lightest_dark: f32,
}

/// A well-lit face's mouth, and the bars when no face is known.
const WELL_LIT: Bars = Bars {
    teeth_from: 60.0,
    lips_from: 15.0,
    lips_lightest_dark: 35.0,
};

impl Bars {
    /// For a face whose cheeks have median lightness `skin_l` and redness
    /// `skin_a`: teeth at most a little darker than the skin around them,
    /// lips redder than it.
    fn face((skin_l, skin_a): (f32, f32)) -> Self {
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
fn tooth_weight(lab: &Lab, bars: Bars) -> f32 {
    let chroma = (lab.a * lab.a + lab.b * lab.b).sqrt();
    smoothstep(bars.teeth_from, bars.teeth_from + 12.0, lab.l)
        * (1.0 - smoothstep(3.0, 9.0, lab.a))
        * (1.0 - smoothstep(24.0, 34.0, chroma))
}

/// Skin-like: light to mid tones, warm, neither grey nor strongly saturated.
fn is_skin(lab: &Lab) -> bool {
    (40.0..92.0).contains(&lab.l)
        && (4.0..22.0).contains(&lab.a)
        && (8.0..30.0).contains(&lab.b)
        && lab.b > 0.5 * lab.a
}

/// Lip-like: clearly red-pink, more red than yellow, mid lightness.
fn is_lip(lab: &Lab, bars: Bars) -> bool {
    lab.a > bars.lips_from && lab.b < 1.2 * lab.a && lab.l > bars.lips_lightest_dark && lab.l < 80.0
}

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

/// The teeth a face shows, if any: the bars its mouth is judged by and the
/// box around its teeth.
fn mouth_of(img: &RgbaImage, face: &Face) -> Option<(Bars, Region)> {
    let (w, h) = img.dimensions();
    let bars = median_skin(img, face.part(CHEEKS, w, h)).map_or(WELL_LIT, Bars::face);
    let (x0, y0, x1, y1) = face.part(MOUTH, w, h);
    let window = Region {
        x: x0,
        y: y0,
        width: x1.saturating_sub(x0),
        height: y1.saturating_sub(y0),
    };
    let sub = image::imageops::crop_imm(img, x0, y0, window.width, window.height).to_image();
    let masks = Masks::of(&sub, bars);
    let teeth = masks.smile(face.width)?;
    Some((
        bars,
        Region {
            x: teeth.x + x0,
            y: teeth.y + y0,
            ..teeth
        },
    ))
}

/// Where a frontal face's mouth lies in its detected box, as fractions
/// (x0, y0, x1, y1), and its cheeks.
const MOUTH: (f32, f32, f32, f32) = (0.2, 0.6, 0.8, 1.0);
const CHEEKS: (f32, f32, f32, f32) = (0.15, 0.45, 0.85, 0.7);

/// The median lightness (L*) and redness (a*) of an area, (x0, y0, x1, y1),
/// unless it is empty.
fn median_skin(img: &RgbaImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> Option<(f32, f32)> {
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

/// Finds a mouth: the most lip-surrounded cluster of tooth-like pixels that
/// is wider than tall and small next to the image. `None` when there is none.
pub fn find_mouth(img: &RgbaImage) -> Option<Region> {
    let masks = Masks::of(img, WELL_LIT);
    let max_area = (masks.w * masks.h) as usize / 50;
    let mut seen = vec![false; masks.teeth.len()];
    let mut best: Option<(f32, Region)> = None;
    for start in 0..masks.teeth.len() {
        if !masks.teeth[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let cluster = masks.tooth_cluster(start, &mut seen);
        if !cluster.mouth_shaped(max_area) {
            continue;
        }
        let score = masks.mouth_score(&cluster);
        if score > 0.08 && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, cluster.padded()));
        }
    }
    best.map(|(_, r)| r)
}

/// Which pixels of an image look like teeth, lips and skin; row-major.
struct Masks {
    w: u32,
    h: u32,
    teeth: Vec<bool>,
    lips: Vec<bool>,
    skin: Vec<bool>,
}

/// A 4-connected cluster of tooth-like pixels: its box (inclusive ends) and
/// how many pixels it has.
#[derive(Clone, Copy)]
struct Cluster {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    area: usize,
}

impl Masks {
    fn of(img: &RgbaImage, bars: Bars) -> Self {
        let (w, h) = img.dimensions();
        let mut teeth = vec![false; (w * h) as usize];
        let mut lips = vec![false; (w * h) as usize];
        let mut skin = vec![false; (w * h) as usize];
        for (x, y, p) in img.enumerate_pixels() {
            let lab = to_lab(p);
            let i = (y * w + x) as usize;
            teeth[i] = tooth_weight(&lab, bars) > 0.5;
            lips[i] = is_lip(&lab, bars);
            skin[i] = is_skin(&lab);
        }
        Self {
            w,
            h,
            teeth,
            lips,
            skin,
        }
    }

    /// The cluster of tooth-like pixels 4-connected to `start`, a tooth-like
    /// pixel already marked in `seen`; marks every pixel it takes.
    fn tooth_cluster(&self, start: usize, seen: &mut [bool]) -> Cluster {
        let (w, h) = (self.w, self.h);
        let mut stack = vec![start];
        let (mut x0, mut y0, mut x1, mut y1, mut area) = (w, h, 0, 0, 0usize);
        while let Some(i) = stack.pop() {
            let (x, y) = ((i as u32) % w, (i as u32) / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            area += 1;
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w as usize),
                (y + 1 < h).then(|| i + w as usize),
            ];
            for j in neighbours.into_iter().flatten() {
                if self.teeth[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        Cluster {
            x0,
            y0,
            x1,
            y1,
            area,
        }
    }

    /// The teeth of a smile in a face's mouth window (this mask's image): the
    /// tooth-like cluster most framed by lips above and below, joined by the
    /// clusters beside it on its row (teeth parted by shadow), padded.
    /// `None` when the mouth is closed. A beard, a chin's flash glare or a
    /// collar has no lips on both sides.
    fn smile(&self, face_width: u32) -> Option<Region> {
        let max_area = (face_width * face_width / 8) as usize;
        let mut seen = vec![false; self.teeth.len()];
        let mut clusters = Vec::new();
        for start in 0..self.teeth.len() {
            if !self.teeth[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            let c = self.tooth_cluster(start, &mut seen);
            if (4..=max_area).contains(&c.area) && c.width() >= c.height() {
                clusters.push(c);
            }
        }
        let best = clusters
            .iter()
            .map(|c| (self.between_lips(c), c))
            .filter(|(framed, _)| *framed > 0.03)
            .max_by(|a, b| a.0.total_cmp(&b.0))?
            .1;
        let mut teeth = *best;
        for c in &clusters {
            let same_row = c.y0 <= best.y1 && c.y1 >= best.y0;
            let near = c.x0 <= teeth.x1 + face_width / 4 && c.x1 + face_width / 4 >= teeth.x0;
            if same_row && near {
                (teeth.x0, teeth.y0) = (teeth.x0.min(c.x0), teeth.y0.min(c.y0));
                (teeth.x1, teeth.y1) = (teeth.x1.max(c.x1), teeth.y1.max(c.y1));
            }
        }
        Some(teeth.padded())
    }

    /// The lesser of the lip fractions just above and just below a cluster.
    fn between_lips(&self, c: &Cluster) -> f32 {
        let h = self.h;
        let band = c.height().max(3);
        let above = self.lip_fraction(c, c.y0.saturating_sub(band)..c.y0);
        let below = self.lip_fraction(c, (c.y1 + 1).min(h)..(c.y1 + 1 + band).min(h));
        above.min(below)
    }

    /// How much a cluster looks like teeth in a mouth; 0 when it does not.
    fn mouth_score(&self, c: &Cluster) -> f32 {
        // Teeth show between lips, and a mouth sits in a face.
        self.between_lips(c) * self.skin_beside(c, c.height().max(3))
    }

    /// The fraction of lip pixels in rows `ys`, over the cluster's columns.
    fn lip_fraction(&self, c: &Cluster, ys: std::ops::Range<u32>) -> f32 {
        let w = self.w;
        let rows = ys.len().max(1) as f32;
        let lip = ys
            .flat_map(|y| (c.x0..=c.x1).map(move |x| (x, y)))
            .filter(|&(x, y)| self.lips[(y * w + x) as usize])
            .count();
        lip as f32 / (rows * c.width() as f32)
    }

    /// The fraction of skin pixels left and right of a cluster, over its
    /// rows grown by `band`.
    fn skin_beside(&self, c: &Cluster, band: u32) -> f32 {
        let (w, h) = (self.w, self.h);
        // And a mouth sits in a face: skin on either side.
        let side = c.width() / 2 + 2;
        let sides = (c.y0.saturating_sub(band)..(c.y1 + band + 1).min(h))
            .flat_map(|y| {
                (c.x0.saturating_sub(side)..c.x0)
                    .chain((c.x1 + 1).min(w)..(c.x1 + 1 + side).min(w))
                    .map(move |x| (x, y))
            })
            .collect::<Vec<_>>();
        sides
            .iter()
            .filter(|&&(x, y)| self.skin[(y * w + x) as usize])
            .count() as f32
            / sides.len().max(1) as f32
    }
}

impl Cluster {
    fn width(&self) -> u32 {
        self.x1 - self.x0 + 1
    }

    fn height(&self) -> u32 {
        self.y1 - self.y0 + 1
    }

    /// Big enough to be teeth, small next to the image (at most `max_area`
    /// pixels), and wider than tall.
    fn mouth_shaped(&self, max_area: usize) -> bool {
        let (bw, bh) = (self.width(), self.height());
        !(self.area < 12 || self.area > max_area || bw < 2 * bh.min(bw) || bw < 6)
    }

    /// The region to whiten: the cluster's box with a margin of 2 pixels.
    fn padded(&self) -> Region {
        Region {
            x: self.x0.saturating_sub(2),
            y: self.y0.saturating_sub(2),
            width: self.width() + 4,
            height: self.height() + 4,
        }
    }
}
