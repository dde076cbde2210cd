//! Red-eye, teeth whitening and smart crop on real photos.

mod support;

use common::recipe::Region;
use image::{DynamicImage, Rgba, RgbaImage};
use palette::{IntoColor, Lab, Srgb};
use worker::engine::retouch::{find_mouth, red_eye, teeth_whiten, whiten_smiles};
use worker::engine::smart::smart_origin;

fn photo(name: &str) -> RgbaImage {
    support::decode(&support::photo(name)).into_rgba8()
}

const fn region(x: u32, y: u32, width: u32, height: u32) -> Region {
    Region {
        x,
        y,
        width,
        height,
    }
}

fn inside(r: Region, x: u32, y: u32) -> bool {
    (r.x..r.x + r.width).contains(&x) && (r.y..r.y + r.height).contains(&y)
}

/// Asserts that no pixel outside `r` differs between `before` and `after`.
fn assert_unchanged_outside(r: Region, before: &RgbaImage, after: &RgbaImage) {
    for (x, y, p) in after.enumerate_pixels() {
        if !inside(r, x, y) {
            let was = before.get_pixel(x, y);
            assert_eq!(p, was, "({x},{y}) outside the region changed");
        }
    }
}

/// Approximate pupil centres in astronaut.png (512×512).
const PUPILS: [(i32, i32); 2] = [(204, 101), (247, 103)];
const RADIUS: i32 = 3;

fn in_pupil(x: u32, y: u32, margin: i32) -> bool {
    PUPILS.iter().any(|&(cx, cy)| {
        let (dx, dy) = (x as i32 - cx, y as i32 - cy);
        dx * dx + dy * dy <= (RADIUS + margin) * (RADIUS + margin)
    })
}

/// astronaut.png with saturated red disks painted over both pupils.
fn red_eyed_astronaut() -> RgbaImage {
    let mut img = photo("astronaut.png");
    for (x, y, p) in img.enumerate_pixels_mut() {
        if in_pupil(x, y, 0) {
            *p = Rgba([210, 30, 35, 255]);
        }
    }
    img
}

fn redness(p: &Rgba<u8>) -> f32 {
    f32::from(p[0]) - (f32::from(p[1]) + f32::from(p[2])) / 2.0
}

#[test]
fn automatic_red_eye_fixes_painted_pupils_only() {
    let before = red_eyed_astronaut();
    let mut after = before.clone();
    let changed = red_eye(&mut after, None);
    assert!(changed > 0, "no pupil found");
    for (x, y, p) in after.enumerate_pixels() {
        if in_pupil(x, y, 0) {
            assert!(redness(p) < 20.0, "pupil pixel ({x},{y}) still red: {p:?}");
        } else {
            // The red flag, the orange suit and the lips stay as they were.
            assert_eq!(
                p,
                before.get_pixel(x, y),
                "pixel ({x},{y}) outside the pupils changed"
            );
        }
    }
}

#[test]
fn automatic_red_eye_leaves_red_rocket_and_unpainted_faces_alone() {
    for name in ["rocket.jpg", "astronaut.png", "coffee.png", "chelsea.png"] {
        let before = photo(name);
        let mut after = before.clone();
        assert_eq!(
            red_eye(&mut after, None),
            0,
            "{name}: something was taken for a red eye"
        );
        assert_eq!(after, before);
    }
}

#[test]
fn red_eye_in_a_region_changes_only_that_region() {
    let before = red_eyed_astronaut();
    let mut after = before.clone();
    // Only the left eye's box.
    let left_eye = region(195, 92, 18, 18);
    red_eye(&mut after, Some(left_eye));
    assert_unchanged_outside(left_eye, &before, &after);
    for (x, y, p) in after.enumerate_pixels() {
        if inside(left_eye, x, y) {
            assert!(redness(p) < 20.0 || !in_pupil(x, y, 0));
        }
    }
    // The right pupil, outside the region, is still red.
    assert!(redness(after.get_pixel(247, 103)) > 100.0);
}

/// Pupil centres of six faces of the Solvay 1927 group photo (3000×2171),
/// from the boxes labelled beside it: faces about 110 px wide, pupils 6-8 px.
fn solvay_pupils() -> Vec<(u32, u32)> {
    let labels: serde_json::Value =
        serde_json::from_slice(&support::photo("faces/solvay-1927.json")).unwrap();
    labels["pupils"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let at = |k: &str, size: &str| {
                (b[k].as_u64().unwrap() + b[size].as_u64().unwrap() / 2) as u32
            };
            (at("x", "width"), at("y", "height"))
        })
        .collect()
}

/// The black-and-white group photo with every labelled pupil turned red,
/// keeping its shading (darkened, then red raised): strongly red in three
/// faces, moderately (red only 60 levels over green and blue) in the others.
fn red_eyed_group() -> RgbaImage {
    let mut img = photo("faces/solvay-1927.jpg");
    for (i, (cx, cy)) in solvay_pupils().into_iter().enumerate() {
        let lift = if i < 6 { 130 } else { 60 };
        for y in cy - 3..=cy + 3 {
            for x in cx - 3..=cx + 3 {
                let (dx, dy) = (x as i32 - cx as i32, y as i32 - cy as i32);
                if dx * dx + dy * dy <= 9 {
                    let p = img.get_pixel_mut(x, y);
                    let shade = (f32::from(p.0[1]) * 0.6) as u8;
                    p.0 = [shade.saturating_add(lift), shade, shade, 255];
                }
            }
        }
    }
    img
}

fn red_pixels_near(img: &RgbaImage, (cx, cy): (u32, u32)) -> f32 {
    (cy - 4..=cy + 4)
        .flat_map(|y| (cx - 4..=cx + 4).map(move |x| (x, y)))
        .map(|(x, y)| redness(img.get_pixel(x, y)).max(0.0))
        .sum()
}

#[test]
fn automatic_red_eye_fixes_every_face_of_a_group_photo() {
    let before = red_eyed_group();
    let mut after = before.clone();
    red_eye(&mut after, None);
    let pupils = solvay_pupils();
    assert_eq!(pupils.len(), 12);
    for &pupil in &pupils {
        let (was, now) = (
            red_pixels_near(&before, pupil),
            red_pixels_near(&after, pupil),
        );
        assert!(
            now <= 0.3 * was,
            "pupil at {pupil:?}: redness {was} -> {now}"
        );
    }
    let near_a_pupil = |x: u32, y: u32| {
        pupils
            .iter()
            .any(|&(cx, cy)| x.abs_diff(cx) <= 6 && y.abs_diff(cy) <= 6)
    };
    for (x, y, p) in after.enumerate_pixels() {
        if !near_a_pupil(x, y) {
            assert_eq!(
                p,
                before.get_pixel(x, y),
                "({x},{y}) changed, no pupil there"
            );
        }
    }
}

#[test]
fn automatic_red_eye_fixes_moderately_red_pupils_judged_against_the_face() {
    // Red only 70 levels over green and blue: too faint for a fixed bar
    // that must keep lips and clothes out.
    let mut before = photo("astronaut.png");
    for (x, y, p) in before.enumerate_pixels_mut() {
        if in_pupil(x, y, 0) {
            *p = Rgba([140, 70, 72, 255]);
        }
    }
    let mut after = before.clone();
    assert!(red_eye(&mut after, None) > 0, "no pupil found");
    for (x, y, p) in after.enumerate_pixels() {
        if in_pupil(x, y, 0) {
            assert!(redness(p) < 10.0, "pupil pixel ({x},{y}) still red: {p:?}");
        } else if !in_pupil(x, y, 2) {
            assert_eq!(
                p,
                before.get_pixel(x, y),
                "({x},{y}) outside the pupils changed"
            );
        }
    }
}

fn mean_lab(img: &RgbaImage, r: Region) -> Lab {
    let (mut l, mut a, mut b, mut n) = (0.0, 0.0, 0.0, 0.0);
    for y in r.y..r.y + r.height {
        for x in r.x..r.x + r.width {
            let p = img.get_pixel(x, y);
            let lab: Lab = Srgb::new(p[0], p[1], p[2])
                .into_format::<f32>()
                .into_color();
            l += lab.l;
            a += lab.a;
            b += lab.b;
            n += 1.0;
        }
    }
    Lab::new(l / n, a / n, b / n)
}

/// The visible teeth of the smile in astronaut.png.
const TEETH: Region = region(210, 144, 26, 4);

#[test]
fn teeth_whitening_lowers_yellowness_inside_the_region_only() {
    let before = photo("astronaut.png");
    let mut after = before.clone();
    let mouth = region(202, 136, 44, 16);
    teeth_whiten(&mut after, 0.8, Some(mouth));
    let (b0, b1) = (mean_lab(&before, TEETH), mean_lab(&after, TEETH));
    assert!(
        b1.b < b0.b - 3.0,
        "b* {:.1} -> {:.1}: not less yellow",
        b0.b,
        b1.b
    );
    assert!(b1.l >= b0.l, "teeth got darker");
    assert_unchanged_outside(mouth, &before, &after);
    // Lips just below the teeth keep their colour.
    let lips = region(214, 150, 20, 2);
    let (l0, l1) = (mean_lab(&before, lips), mean_lab(&after, lips));
    assert!(
        (l0.a - l1.a).abs() < 1.5,
        "lip redness changed {:.1} -> {:.1}",
        l0.a,
        l1.a
    );
}

#[test]
fn teeth_whitening_finds_the_mouth_by_itself() {
    let img = photo("astronaut.png");
    let mouth = find_mouth(&img).expect("a mouth");
    let (cx, cy) = (mouth.x + mouth.width / 2, mouth.y + mouth.height / 2);
    assert!(
        (205..245).contains(&cx) && (135..155).contains(&cy),
        "mouth found at {mouth:?}"
    );
    let mut after = img.clone();
    teeth_whiten(&mut after, 0.8, None);
    assert!(mean_lab(&after, TEETH).b < mean_lab(&img, TEETH).b - 2.0);
}

#[test]
fn teeth_whitening_finds_the_smile_of_each_face() {
    let img = photo("astronaut.png");
    let mut after = img.clone();
    let treated = whiten_smiles(&mut after, 0.8);
    assert_eq!(treated.len(), 1, "{treated:?}");
    let mouth = treated[0];
    assert!(inside(mouth, 222, 146), "the smile is not in {mouth:?}");
    assert!(mean_lab(&after, TEETH).b < mean_lab(&img, TEETH).b - 3.0);
    assert_unchanged_outside(mouth, &img, &after);
}

#[test]
fn teeth_whitening_finds_a_smile_in_shadow_judged_against_its_face() {
    // The portrait at 60 % of its light: her teeth are darker than the
    // fixed bar for teeth, which no longer finds the mouth.
    let mut img = photo("astronaut.png");
    for p in img.pixels_mut() {
        for c in &mut p.0[..3] {
            *c = (f32::from(*c) * 0.6) as u8;
        }
    }
    assert_eq!(
        find_mouth(&img),
        None,
        "the fixed bar found it: the test proves nothing"
    );
    let mut after = img.clone();
    let treated = whiten_smiles(&mut after, 0.8);
    assert_eq!(treated.len(), 1, "{treated:?}");
    assert!(
        inside(treated[0], 222, 146),
        "the smile is not in {:?}",
        treated[0]
    );
    assert!(mean_lab(&after, TEETH).b < mean_lab(&img, TEETH).b - 2.0);
    assert_unchanged_outside(treated[0], &img, &after);
}

#[test]
fn smart_crop_keeps_the_face_over_busier_detail() {
    // The astronaut's face on the left of a wide canvas whose right holds
    // the cat's fur, more detailed than a face.
    let mut img = RgbaImage::from_pixel(900, 300, Rgba([128, 128, 128, 255]));
    let face = image::imageops::crop_imm(&photo("astronaut.png"), 140, 40, 160, 160).to_image();
    image::imageops::replace(&mut img, &face, 40, 70);
    let fur = image::imageops::crop_imm(&photo("chelsea.png"), 0, 0, 300, 300).to_image();
    image::imageops::replace(&mut img, &fur, 600, 0);
    let (x, _) = smart_origin(&DynamicImage::ImageRgba8(img), 250, 300);
    assert!(x <= 40, "window at x={x} leaves out the face at 40..200");
}

#[test]
fn smart_crop_goes_to_the_detailed_part() {
    // A flat grey 600×200 canvas with a detailed patch near its right end.
    let mut img = RgbaImage::from_pixel(600, 200, Rgba([128, 128, 128, 255]));
    let detail = photo("chelsea.png");
    image::imageops::replace(
        &mut img,
        &image::imageops::crop_imm(&detail, 100, 50, 150, 150).to_image(),
        420,
        25,
    );
    let (x, y) = smart_origin(&DynamicImage::ImageRgba8(img), 200, 200);
    assert_eq!(y, 0);
    assert!(
        (370..=400).contains(&x),
        "window at x={x} misses the patch at 420..570"
    );
}
