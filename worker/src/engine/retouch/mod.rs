//! Portrait retouching: red-eye removal and teeth whitening.
//!
//! Both work on an RGBA image in place and never touch a pixel outside the
//! area they decide to correct, so the rest of a photo stays bit-identical.
//!
//! Without a region from the user, both look inside the faces the detector
//! finds (`super::faces`): red-eye in each face's eyes (`eyes`), whitening
//! in each face's mouth (`teeth`). This file holds the dispatch, the
//! face-less pupil finder kept for close-ups too tight for a face to be
//! found, and the helpers both share.

mod eyes;
mod teeth;

pub use teeth::{find_mouth, teeth_whiten};

use common::recipe::Region;
use image::{DynamicImage, Rgba, RgbaImage};

use super::faces::{faces_around, find_faces};

/// Red-eye removal on any image (made RGBA first).
pub(super) fn red_eye_image(img: DynamicImage, region: Option<Region>) -> DynamicImage {
    let mut rgba = img.into_rgba8();
    red_eye(&mut rgba, region);
    DynamicImage::ImageRgba8(rgba)
}

/// Teeth whitening on any image (made RGBA first): in the region given, or
/// on every smile of the faces found, or where no face is found, on the one
/// mouth found by colour alone (see [`find_mouth`]).
pub(super) fn teeth_whiten_image(
    img: DynamicImage,
    strength: f32,
    region: Option<Region>,
) -> DynamicImage {
    let faces = if region.is_none() {
        find_faces(&img)
    } else {
        Vec::new()
    };
    let mut rgba = img.into_rgba8();
    if faces.is_empty() {
        teeth_whiten(&mut rgba, strength, region);
    } else {
        teeth::whiten_faces(&mut rgba, strength, &faces);
    }
    DynamicImage::ImageRgba8(rgba)
}

/// Whitens the teeth of every face found in `img` that shows them; returns
/// the areas treated.
pub fn whiten_smiles(img: &mut RgbaImage, strength: f32) -> Vec<Region> {
    let faces = find_faces(&DynamicImage::ImageRgba8(img.clone()));
    teeth::whiten_faces(img, strength, &faces)
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
/// corrected; without one, the pupils of every face found, or where no face
/// is found, pupils found by their shape alone (see [`find_pupils`]).
/// Returns how many pixels changed.
pub fn red_eye(img: &mut RgbaImage, region: Option<Region>) -> usize {
    if region.is_none() {
        // Faces are looked for only around red spots: a photo without red
        // costs one pass over its pixels.
        let faces = faces_around(img, &eyes::red_spots(img));
        if !faces.is_empty() {
            return eyes::red_eyes_in_faces(img, &faces);
        }
    }
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
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize;
            if seen[i] || !is_red(img.get_pixel(x, y)) {
                continue;
            }
            seen[i] = true;
            let pixels = grow_while(img, (0, 0, w, h), &mut seen, (x, y), is_red);
            let (x0, y0, x1, y1) = bounds(&pixels);
            blobs.push(Blob {
                pixels,
                x0,
                y0,
                x1,
                y1,
            });
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
        .filter(|b| looks_like_pupil(img, b, max_side))
        .collect();
    let paired: Vec<bool> = (0..candidates.len())
        .map(|i| has_partner(&candidates, i))
        .collect();
    candidates
        .into_iter()
        .zip(paired)
        .filter_map(|(b, p)| p.then_some(b))
        .collect()
}

/// Whether a blob, on its own, could be a red pupil: glowing, small (no
/// side over `max_side`), round, compact and isolated.
fn looks_like_pupil(img: &RgbaImage, b: &Blob, max_side: u32) -> bool {
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
        && stands_alone(img, (b.x0, b.y0, b.x1, b.y1), is_red, 0.15)
}

/// Whether another of `candidates` could be the other eye of the `i`th: of
/// similar size, at about the same height, and a few pupils' widths beside it.
fn has_partner(candidates: &[Blob], i: usize) -> bool {
    let a = &candidates[i];
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
}

/// The pixels of the `x0..x1 × y0..y1` window 8-connected to `start`
/// (already marked in `seen`, the window's row-major marks) that pass `take`.
fn grow_while(
    img: &RgbaImage,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    seen: &mut [bool],
    start: (u32, u32),
    take: impl Fn(&Rgba<u8>) -> bool,
) -> Vec<(u32, u32)> {
    let ww = x1 - x0;
    let (mut stack, mut blob) = (vec![start], Vec::new());
    while let Some((x, y)) = stack.pop() {
        blob.push((x, y));
        for ny in y.saturating_sub(1)..=(y + 1).min(y1 - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(x1 - 1) {
                if nx < x0 || ny < y0 {
                    continue;
                }
                let j = ((ny - y0) * ww + (nx - x0)) as usize;
                if !seen[j] && take(img.get_pixel(nx, ny)) {
                    seen[j] = true;
                    stack.push((nx, ny));
                }
            }
        }
    }
    blob
}

/// A blob's box: (x0, y0, x1, y1), inclusive ends.
fn bounds(pixels: &[(u32, u32)]) -> (u32, u32, u32, u32) {
    let (mut bx0, mut by0, mut bx1, mut by1) = (u32::MAX, u32::MAX, 0, 0);
    for &(x, y) in pixels {
        (bx0, by0, bx1, by1) = (bx0.min(x), by0.min(y), bx1.max(x), by1.max(y));
    }
    (bx0, by0, bx1, by1)
}

/// Whether less than the share `most` of the ring around a blob's box (the
/// box grown by its size) is red: a pupil sits in an iris and white, a
/// fragment of a red cup, dress or wall (split off by noise or texture) in
/// more red.
fn stands_alone(
    img: &RgbaImage,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    is_red: impl Fn(&Rgba<u8>) -> bool,
    most: f32,
) -> bool {
    let (w, h) = img.dimensions();
    let grow = (x1 - x0).max(y1 - y0) + 1;
    let (gx0, gy0) = (x0.saturating_sub(grow), y0.saturating_sub(grow));
    let (gx1, gy1) = ((x1 + grow).min(w - 1), (y1 + grow).min(h - 1));
    let (mut ring, mut red) = (0u32, 0u32);
    for y in gy0..=gy1 {
        for x in gx0..=gx1 {
            if !((x0..=x1).contains(&x) && (y0..=y1).contains(&y)) {
                ring += 1;
                red += u32::from(is_red(img.get_pixel(x, y)));
            }
        }
    }
    (red as f32) < most * ring as f32
}
