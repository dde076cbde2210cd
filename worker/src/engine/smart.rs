//! Smart crop: place a crop window over the most detailed part of an image,
//! in the spirit of libvips' `attention` / smartcrop.js: edges plus colour
//! saturation, summed over the window, maximised by a sliding search. Faces
//! outweigh any detail, as in smartcrop.js with its face boost: a crop of a
//! portrait keeps the person, not the patterned wall beside them.

use image::DynamicImage;
use image::imageops::FilterType;

use super::faces::{Face, find_faces};

/// A face's cells score this many times the most detailed cell of the image.
const FACE_BOOST: f64 = 4.0;

/// Largest side of the analysis image: plenty to place a window.
const ANALYSIS_SIDE: u32 = 256;

/// Origin of the `cw × ch` window (in pixels of `img`) with the most detail.
pub fn smart_origin(img: &DynamicImage, cw: u32, ch: u32) -> (u32, u32) {
    let (w, h) = (img.width(), img.height());
    if cw >= w && ch >= h {
        return (0, 0);
    }
    let scale = (ANALYSIS_SIDE as f32 / w.max(h) as f32).min(1.0);
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let small = img.resize_exact(sw, sh, FilterType::Triangle).to_rgb8();
    let luma: Vec<f32> = small
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let (sw_u, sh_u) = (sw as usize, sh as usize);
    let mut score = vec![0f64; sw_u * sh_u];
    for y in 0..sh_u {
        for x in 0..sw_u {
            let at = |xx: usize, yy: usize| luma[yy * sw_u + xx];
            let gx = at((x + 1).min(sw_u - 1), y) - at(x.saturating_sub(1), y);
            let gy = at(x, (y + 1).min(sh_u - 1)) - at(x, y.saturating_sub(1));
            let p = small.get_pixel(x as u32, y as u32);
            let (mx, mn) = (p.0.iter().max().unwrap(), p.0.iter().min().unwrap());
            let saturation = f32::from(mx - mn);
            score[y * sw_u + x] = f64::from(gx.abs() + gy.abs() + 0.3 * saturation);
        }
    }
    boost_faces(&mut score, sw_u, scale, &find_faces(img));
    // Summed-area table: any window's score in O(1).
    let mut sat = vec![0f64; (sw_u + 1) * (sh_u + 1)];
    for y in 0..sh_u {
        let mut row = 0.0;
        for x in 0..sw_u {
            row += score[y * sw_u + x];
            sat[(y + 1) * (sw_u + 1) + x + 1] = sat[y * (sw_u + 1) + x + 1] + row;
        }
    }
    let win_w = ((cw as f32 * scale).round() as usize).clamp(1, sw_u);
    let win_h = ((ch as f32 * scale).round() as usize).clamp(1, sh_u);
    let sum = |x: usize, y: usize| {
        let s = |xx: usize, yy: usize| sat[yy * (sw_u + 1) + xx];
        s(x + win_w, y + win_h) - s(x, y + win_h) - s(x + win_w, y) + s(x, y)
    };
    let mut best = (f64::MIN, 0usize, 0usize);
    for y in 0..=(sh_u - win_h) {
        for x in 0..=(sw_u - win_w) {
            let s = sum(x, y);
            if s > best.0 {
                best = (s, x, y);
            }
        }
    }
    let ox = ((best.1 as f32 / scale).round() as u32).min(w.saturating_sub(cw));
    let oy = ((best.2 as f32 / scale).round() as u32).min(h.saturating_sub(ch));
    (ox, oy)
}

/// Raises the score of every analysis cell a face covers above any detail.
fn boost_faces(score: &mut [f64], sw: usize, scale: f32, faces: &[Face]) {
    let sh = score.len() / sw;
    let boost = FACE_BOOST * score.iter().copied().fold(1.0, f64::max);
    for face in faces {
        let cell = |v: u32, limit: usize| ((v as f32 * scale) as usize).min(limit);
        let (x0, y0) = (cell(face.x, sw), cell(face.y, sh));
        let (x1, y1) = (
            cell(face.x + face.width, sw),
            cell(face.y + face.height, sh),
        );
        for y in y0..y1 {
            for x in x0..x1 {
                score[y * sw + x] += boost;
            }
        }
    }
}
