//! Portrait retouching: red-eye removal and teeth whitening.
//!
//! Both work on an RGBA image in place and never touch a pixel outside the
//! area they decide to correct, so the rest of a photo stays bit-identical.

use common::recipe::Region;
use image::{DynamicImage, RgbaImage};
use palette::{IntoColor, Lab, Srgb};

/// Red-eye removal on any image (made RGBA first).
pub(super) fn red_eye_image(img: DynamicImage, region: Option<Region>) -> DynamicImage {
    let mut rgba = img.into_rgba8();
    red_eye(&mut rgba, region);
    DynamicImage::ImageRgba8(rgba)
}

/// Teeth whitening on any image (made RGBA first).
pub(super) fn teeth_whiten_image(
    img: DynamicImage,
    strength: f32,
    region: Option<Region>,
) -> DynamicImage {
    let mut rgba = img.into_rgba8();
    teeth_whiten(&mut rgba, strength, region);
    DynamicImage::ImageRgba8(rgba)
}

/// A rectangle clipped to the image: (x0, y0, x1, y1), exclusive ends.
fn clip(region: Region, w: u32, h: u32) -> (u32, u32, u32, u32) {
    let x0 = region.x.min(w);
    let y0 = region.y.min(h);
    (
        x0,
        y0,
        region.x.saturating_add(region.width).min(w),
        region.y.saturating_add(region.height).min(h),
    )
}

/// Strongly, purely red: the red channel bright and over twice the mean of
/// green and blue, with green not far above blue. The last test keeps out
/// orange (flames, suits) and auburn hair, which pass the ratio alone.
fn is_red(p: &image::Rgba<u8>) -> bool {
    let [r, g, b, _] = p.0;
    let gb = (u16::from(g) + u16::from(b)) / 2;
    r >= 100 && u16::from(r) > 2 * gb && u16::from(g) <= u16::from(b) + 40
}

fn desaturate_red(p: &mut image::Rgba<u8>) {
    let [_, g, b, _] = p.0;
    p.0[0] = ((u16::from(g) + u16::from(b)) / 2) as u8;
}

/// Removes red-eye. With a region, every strongly red pixel inside it is
/// corrected; without one, pupils are found automatically (see [`find_pupils`]).
/// Returns how many pixels changed.
pub fn red_eye(img: &mut RgbaImage, region: Option<Region>) -> usize {
    let (w, h) = img.dimensions();
    let mut changed = 0;
    match region {
        Some(region) => {
            let (x0, y0, x1, y1) = clip(region, w, h);
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = img.get_pixel_mut(x, y);
                    if is_red(p) {
                        desaturate_red(p);
                        changed += 1;
                    }
                }
            }
        }
        None => {
            for pupil in find_pupils(img) {
                for (x, y) in pupil.pixels {
                    desaturate_red(img.get_pixel_mut(x, y));
                    changed += 1;
                }
            }
        }
    }
    changed
}

/// A connected blob of strongly red pixels.
#[derive(Debug)]
pub struct Blob {
    pub pixels: Vec<(u32, u32)>,
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Blob {
    fn width(&self) -> u32 {
        self.x1 - self.x0 + 1
    }
    fn height(&self) -> u32 {
        self.y1 - self.y0 + 1
    }
    fn diameter(&self) -> f32 {
        (self.width() + self.height()) as f32 / 2.0
    }
    fn center(&self) -> (f32, f32) {
        (
            (self.x0 + self.x1) as f32 / 2.0,
            (self.y0 + self.y1) as f32 / 2.0,
        )
    }
}

/// 8-connected blobs of strongly red pixels.
fn red_blobs(img: &RgbaImage) -> Vec<Blob> {
    let (w, h) = img.dimensions();
    let mut seen = vec![false; (w * h) as usize];
    let mut blobs = Vec::new();
    let mut stack = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize;
            if seen[i] || !is_red(img.get_pixel(x, y)) {
                continue;
            }
            seen[i] = true;
            stack.push((x, y));
            let mut blob = Blob {
                pixels: Vec::new(),
                x0: x,
                y0: y,
                x1: x,
                y1: y,
            };
            while let Some((px, py)) = stack.pop() {
                blob.pixels.push((px, py));
                blob.x0 = blob.x0.min(px);
                blob.x1 = blob.x1.max(px);
                blob.y0 = blob.y0.min(py);
                blob.y1 = blob.y1.max(py);
                for (dx, dy) in [
                    (-1i32, -1i32),
                    (0, -1),
                    (1, -1),
                    (-1, 0),
                    (1, 0),
                    (-1, 1),
                    (0, 1),
                    (1, 1),
                ] {
                    let (nx, ny) = (px as i32 + dx, py as i32 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i32 || ny >= h as i32 {
                        continue;
                    }
                    let j = (ny as u32 * w + nx as u32) as usize;
                    if !seen[j] && is_red(img.get_pixel(nx as u32, ny as u32)) {
                        seen[j] = true;
                        stack.push((nx as u32, ny as u32));
                    }
                }
            }
            blobs.push(blob);
        }
    }
    blobs
}

/// Red blobs that look like a pair of pupils: small, round, compact, not
/// part of a larger red area, and with a partner of similar size beside them
/// at the same height. Red clothes, lips and rockets fail one of these.
pub fn find_pupils(img: &RgbaImage) -> Vec<Blob> {
    let (w, h) = img.dimensions();
    let max_side = (w.min(h) / 12).max(4);
    let candidates: Vec<Blob> = red_blobs(img)
        .into_iter()
        .filter(|b| {
            let (bw, bh) = (b.width(), b.height());
            let area = b.pixels.len() as f32;
            let aspect = bw as f32 / bh as f32;
            // Mean excess red: a red pupil glows; red texture only tints.
            let glow = b
                .pixels
                .iter()
                .map(|&(x, y)| {
                    let [r, g, bl, _] = img.get_pixel(x, y).0;
                    f32::from(r) - (f32::from(g) + f32::from(bl)) / 2.0
                })
                .sum::<f32>()
                / area;
            area >= 12.0
                && bw >= 3
                && bh >= 3
                && glow >= 80.0
                && bw <= max_side
                && bh <= max_side
                && (0.5..=2.0).contains(&aspect)
                && area / (bw * bh) as f32 >= 0.55
                && isolated(img, b)
        })
        .collect();
    let paired: Vec<bool> = candidates
        .iter()
        .enumerate()
        .map(|(i, a)| {
            candidates.iter().enumerate().any(|(j, b)| {
                if i == j {
                    return false;
                }
                let (ratio, d) = (
                    a.pixels.len() as f32 / b.pixels.len() as f32,
                    (a.diameter() + b.diameter()) / 2.0,
                );
                let ((ax, ay), (bx, by)) = (a.center(), b.center());
                (1.0 / 3.0..=3.0).contains(&ratio)
                    && (ay - by).abs() <= 1.5 * d
                    && (2.0 * d..=20.0 * d).contains(&(ax - bx).abs())
            })
        })
        .collect();
    candidates
        .into_iter()
        .zip(paired)
        .filter_map(|(b, p)| p.then_some(b))
        .collect()
}

/// Whether the ring around a blob (its box grown by its size) is mostly not red.
fn isolated(img: &RgbaImage, b: &Blob) -> bool {
    let (w, h) = img.dimensions();
    let grow = b.width().max(b.height());
    let (x0, y0) = (b.x0.saturating_sub(grow), b.y0.saturating_sub(grow));
    let (x1, y1) = ((b.x1 + grow).min(w - 1), (b.y1 + grow).min(h - 1));
    let (mut ring, mut red) = (0u32, 0u32);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if (b.x0..=b.x1).contains(&x) && (b.y0..=b.y1).contains(&y) {
                continue;
            }
            ring += 1;
            red += u32::from(is_red(img.get_pixel(x, y)));
        }
    }
    ring > 0 && (red as f32) < 0.15 * ring as f32
}

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

/// How tooth-like a colour is: bright, and with little red (a*) even when
/// yellow. Lips and gums are too red, skin too red for its lightness, so they
/// score (nearly) zero; yellowish teeth still score high.
fn tooth_weight(lab: &Lab) -> f32 {
    let chroma = (lab.a * lab.a + lab.b * lab.b).sqrt();
    smoothstep(60.0, 72.0, lab.l)
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
fn is_lip(lab: &Lab) -> bool {
    lab.a > 15.0 && lab.b < 1.2 * lab.a && lab.l > 35.0 && lab.l < 80.0
}

/// Whitens teeth inside `region` (or an automatically found mouth):
/// lowers yellowness (LAB b*) and lifts lightness of bright, low-saturation
/// pixels with a feathered mask. Returns the area treated, if any.
pub fn teeth_whiten(img: &mut RgbaImage, strength: f32, region: Option<Region>) -> Option<Region> {
    let region = region.or_else(|| find_mouth(img))?;
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
            weight.push(tooth_weight(&lab));
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
    let (w, h) = img.dimensions();
    let mut teeth = vec![false; (w * h) as usize];
    let mut lips = vec![false; (w * h) as usize];
    let mut skin = vec![false; (w * h) as usize];
    for (x, y, p) in img.enumerate_pixels() {
        let lab = to_lab(p);
        let i = (y * w + x) as usize;
        teeth[i] = tooth_weight(&lab) > 0.5;
        lips[i] = is_lip(&lab);
        skin[i] = is_skin(&lab);
    }
    let max_area = (w * h) as usize / 50;
    let mut seen = vec![false; teeth.len()];
    let mut best: Option<(f32, Region)> = None;
    let mut stack = Vec::new();
    for start in 0..teeth.len() {
        if !teeth[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
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
                if teeth[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
        if area < 12 || area > max_area || bw < 2 * bh.min(bw) || bw < 6 {
            continue;
        }
        // Teeth show between lips: count lip pixels in a band above and one below.
        let band = bh.max(3);
        let lip_fraction = |ys: std::ops::Range<u32>| {
            let rows = ys.len().max(1) as f32;
            let lip = ys
                .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
                .filter(|&(x, y)| lips[(y * w + x) as usize])
                .count();
            lip as f32 / (rows * bw as f32)
        };
        let above = lip_fraction(y0.saturating_sub(band)..y0);
        let below = lip_fraction((y1 + 1).min(h)..(y1 + 1 + band).min(h));
        let score = above.min(below);
        // And a mouth sits in a face: skin on either side.
        let side = bw / 2 + 2;
        let sides = (y0.saturating_sub(band)..(y1 + band + 1).min(h))
            .flat_map(|y| {
                (x0.saturating_sub(side)..x0)
                    .chain((x1 + 1).min(w)..(x1 + 1 + side).min(w))
                    .map(move |x| (x, y))
            })
            .collect::<Vec<_>>();
        let skin_fraction = sides
            .iter()
            .filter(|&&(x, y)| skin[(y * w + x) as usize])
            .count() as f32
            / sides.len().max(1) as f32;
        let score = score * skin_fraction;
        if score > 0.08 && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((
                score,
                Region {
                    x: x0.saturating_sub(2),
                    y: y0.saturating_sub(2),
                    width: bw + 4,
                    height: bh + 4,
                },
            ));
        }
    }
    best.map(|(_, r)| r)
}
