//! Faces: where the people in a photo are, so retouching looks for eyes and
//! smiles only inside faces, and smart crops keep them in the frame.
//!
//! The detector is SeetaFace's funnel-structured cascade as the `rustface`
//! crate implements it (BSD-2, pure Rust), with the frontal model its
//! crates.io package ships (`worker/models/`, see the README there). It runs
//! on a grey copy: of the whole photo no longer than [`DETECT_SIDE`], or,
//! when something small is looked for (a red pupil), only of the area around
//! each candidate at the scale its size implies ([`faces_around`]). The cost
//! grows with the pixels scanned: 0.37 s per megapixel of copy (release
//! build, one core).

use std::sync::OnceLock;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, GrayImage, RgbaImage};
use rustface::{Detector, ImageData, Model};

/// Longest side of the copy a whole photo's faces are looked for in. On a
/// 12 MP photo (4000 px wide) the smallest face found is about 60 px wide:
/// the back row of a group of thirty.
const DETECT_SIDE: u32 = 1400;

/// The smallest face, in pixels of the detection copy (the model's window).
const MIN_FACE: u32 = 20;

/// The classifier's last-stage score a face must reach: the crate's own
/// default, which finds 28 of the 29 people of the Solvay photo and no face
/// in the test photos without one.
const MIN_SCORE: f64 = 3.85;

/// The score for a face around a spot: a red pupil is evidence already.
const MIN_SCORE_AROUND: f64 = 2.0;

/// A face's box in pixels of the image it was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Face {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Face {
    /// A part of the face given in fractions of its box (0..1 across, 0..1
    /// down), clipped to an image of `w × h`: (x0, y0, x1, y1), exclusive ends.
    pub fn part(
        &self,
        (fx0, fy0, fx1, fy1): (f32, f32, f32, f32),
        w: u32,
        h: u32,
    ) -> (u32, u32, u32, u32) {
        let at = |origin: u32, size: u32, f: f32, limit: u32| {
            ((origin as f32 + size as f32 * f).round().max(0.0) as u32).min(limit)
        };
        (
            at(self.x, self.width, fx0, w),
            at(self.y, self.height, fy0, h),
            at(self.x, self.width, fx1, w),
            at(self.y, self.height, fy1, h),
        )
    }

    /// Whether the two boxes share more than half of the smaller one.
    fn overlaps(&self, other: &Face) -> bool {
        let ix = (self.x + self.width)
            .min(other.x + other.width)
            .saturating_sub(self.x.max(other.x));
        let iy = (self.y + self.height)
            .min(other.y + other.height)
            .saturating_sub(self.y.max(other.y));
        let smaller = (self.width * self.height).min(other.width * other.height);
        2 * ix * iy > smaller
    }
}

/// The model, parsed once per process from the bytes built into the binary
/// (the engine's sandbox opens no files).
fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        rustface::read_model(&include_bytes!("../../models/seeta_fd_frontal_v1.0.bin")[..])
            .expect("the face model built into the binary parses")
    })
}

/// Every frontal face in `img`, largest first.
pub fn find_faces(img: &DynamicImage) -> Vec<Face> {
    let (w, h) = (img.width(), img.height());
    let scale = (DETECT_SIDE as f32 / w.max(h) as f32).min(1.0);
    let mut faces = detect(&mut *detector(MIN_SCORE), img, scale, None);
    faces.sort_by_key(|f| std::cmp::Reverse(f.width * f.height));
    faces
}

/// A small thing a face may be around, such as a red pupil: its centre and
/// diameter in pixels.
#[derive(Clone, Copy, Debug)]
pub struct Spot {
    pub x: u32,
    pub y: u32,
    pub diameter: u32,
}

/// How much wider than a red pupil its face is: an adult's dilated pupil
/// (5–8 mm) is a 17th to a 28th of the face, a red blob covering only part
/// of it narrower, one spilling onto the iris wider; the wide end also gives
/// the detector the context it needs (a window 60 pupils wide lost two of
/// the six faces of the group test's 12 MP copy, 80 wide none). The range
/// sets each search's cost: a window 80 pupils wide scanned at 32 px per 12.
const FACE_PER_PUPIL: std::ops::RangeInclusive<f32> = 12.0..=40.0;

/// The width the narrowest face around a spot is scanned at: above the
/// model's 20-pixel window, where it finds faces reliably (at 29 px it
/// missed the portrait's).
const SPOT_FACE_SIDE: f32 = 32.0;

/// The faces around `spots`: each spot's surroundings are searched at the
/// scale its size implies, so the cost follows the spots, not the image.
/// A spot already inside an area searched for a spot of about its size (the
/// other eye) adds nothing.
pub fn faces_around(img: &RgbaImage, spots: &[Spot]) -> Vec<Face> {
    let (w, h) = img.dimensions();
    let mut detector = detector(MIN_SCORE_AROUND);
    let mut searched: Vec<((u32, u32, u32, u32), f32)> = Vec::new();
    let mut faces: Vec<Face> = Vec::new();
    for spot in spots {
        let d = spot.diameter.max(1) as f32;
        let covered = |&((x0, y0, x1, y1), searched_d): &((u32, u32, u32, u32), f32)| {
            (x0..x1).contains(&spot.x)
                && (y0..y1).contains(&spot.y)
                && (0.8..=1.25).contains(&(searched_d / d))
        };
        if searched.iter().any(covered) {
            continue;
        }
        let reach = (d * FACE_PER_PUPIL.end()) as u32;
        let area = (
            spot.x.saturating_sub(reach),
            spot.y.saturating_sub(reach),
            (spot.x + reach).min(w),
            (spot.y + reach).min(h),
        );
        searched.push((area, d));
        let (x0, y0, x1, y1) = area;
        let window = DynamicImage::ImageRgba8(
            image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image(),
        );
        let scale = (SPOT_FACE_SIDE / (d * FACE_PER_PUPIL.start())).min(1.0);
        for face in detect(&mut *detector, &window, scale, Some((x0, y0))) {
            if !faces.iter().any(|f| f.overlaps(&face)) {
                faces.push(face);
            }
        }
    }
    faces
}

/// A detector of faces scoring at least `min_score`.
fn detector(min_score: f64) -> Box<dyn Detector> {
    let mut detector = rustface::create_detector_with_model(model().clone());
    detector.set_min_face_size(MIN_FACE);
    detector.set_score_thresh(min_score);
    detector
}

/// The faces in `img` searched at `scale`, in pixels of `img` moved by
/// `offset` (where `img` was cut from a larger image).
fn detect(
    detector: &mut dyn Detector,
    img: &DynamicImage,
    scale: f32,
    offset: Option<(u32, u32)>,
) -> Vec<Face> {
    let (w, h) = (img.width(), img.height());
    let grey = detection_copy(img, scale);
    if grey.width().min(grey.height()) < MIN_FACE {
        return Vec::new();
    }
    let (ox, oy) = offset.unwrap_or_default();
    detector
        .detect(&ImageData::new(grey.as_raw(), grey.width(), grey.height()))
        .iter()
        .map(|found| {
            let b = found.bbox();
            let to_full = |v: i32| (v.max(0) as f32 / scale).round() as u32;
            let (x, y) = (to_full(b.x()).min(w - 1), to_full(b.y()).min(h - 1));
            Face {
                x: x + ox,
                y: y + oy,
                width: to_full(b.width() as i32).min(w - x),
                height: to_full(b.height() as i32).min(h - y),
            }
        })
        .collect()
}

fn detection_copy(img: &DynamicImage, scale: f32) -> GrayImage {
    if scale >= 1.0 {
        return img.to_luma8();
    }
    let (w, h) = (
        ((img.width() as f32 * scale).round() as u32).max(1),
        ((img.height() as f32 * scale).round() as u32).max(1),
    );
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    let mut small = DynamicImage::new(w, h, img.color());
    match Resizer::new().resize(img, &mut small, &options) {
        Ok(()) => small.to_luma8(),
        // Pixel types the SIMD resizer lacks take the portable path.
        Err(_) => img
            .resize_exact(w, h, image::imageops::FilterType::Triangle)
            .to_luma8(),
    }
}
