//! Finding the teeth to whiten when the user gives no region: in a face
//! found by the detector, between its lips; without a face, by colour alone
//! across the whole image. Kept apart from the whitening, which only needs
//! the box this yields.

use common::recipe::Region;
use image::RgbaImage;

use super::colours::{Bars, WELL_LIT, is_lip, is_skin, median_skin, to_lab, tooth_weight};
use crate::engine::faces::Face;

/// The teeth a face shows, if any: the bars its mouth is judged by and the
/// box around its teeth.
pub(super) fn mouth_of(img: &RgbaImage, face: &Face) -> Option<(Bars, Region)> {
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
