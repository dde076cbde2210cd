//! Every simple op on a real photo (chelsea.png, 451×300): dimensions and
//! pixel statistics of the decoded output, not encoder bytes.

mod support;

use common::recipe::OutputFormat;
use image::RgbImage;
use serde_json::json;

fn chelsea() -> Vec<u8> {
    support::photo("chelsea.png")
}

/// chelsea.png after `ops` (as a recipe gives them), losslessly as PNG.
fn run(ops: serde_json::Value) -> RgbImage {
    let out = support::run_as(&chelsea(), &support::ops(ops), OutputFormat::Png);
    let img = support::decode(&out.bytes).to_rgb8();
    assert_eq!((img.width(), img.height()), (out.width, out.height));
    img
}

fn original() -> RgbImage {
    support::decode(&chelsea()).to_rgb8()
}

fn mean(img: &RgbImage, c: usize) -> f64 {
    img.pixels().map(|p| f64::from(p[c])).sum::<f64>() / f64::from(img.width() * img.height())
}

fn luma_stddev(img: &RgbImage) -> f64 {
    let l: Vec<f64> = img
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let m = l.iter().sum::<f64>() / l.len() as f64;
    (l.iter().map(|v| (v - m).powi(2)).sum::<f64>() / l.len() as f64).sqrt()
}

/// Mean absolute difference between horizontal neighbours: fine detail.
fn detail(img: &RgbImage) -> f64 {
    let mut sum = 0.0;
    for y in 0..img.height() {
        for x in 1..img.width() {
            sum +=
                (f64::from(img.get_pixel(x, y)[1]) - f64::from(img.get_pixel(x - 1, y)[1])).abs();
        }
    }
    sum / f64::from(img.width() * img.height())
}

#[test]
fn rotate_and_flip_move_pixels_exactly() {
    let src = original();
    let r = run(json!([{"op":"rotate","degrees":90}]));
    assert_eq!((r.width(), r.height()), (300, 451));
    // Clockwise: source (x, y) lands at (h - 1 - y, x).
    assert_eq!(r.get_pixel(299 - 10, 20), src.get_pixel(20, 10));
    let f = run(json!([{"op":"flip","axis":"horizontal"}]));
    assert_eq!(f.get_pixel(450 - 7, 9), src.get_pixel(7, 9));
    let v = run(json!([{"op":"flip","axis":"vertical"}]));
    assert_eq!(v.get_pixel(7, 299 - 9), src.get_pixel(7, 9));
    let r180 = run(json!([{"op":"rotate","degrees":180}]));
    assert_eq!(r180.get_pixel(450, 299), src.get_pixel(0, 0));
}

#[test]
fn crop_and_resize_give_the_asked_geometry() {
    let src = original();
    let c = run(json!([{"op":"crop","x":100,"y":50,"width":64,"height":32}]));
    assert_eq!((c.width(), c.height()), (64, 32));
    assert_eq!(c.get_pixel(0, 0), src.get_pixel(100, 50));
    assert_eq!(
        run(json!([{"op":"resize","width":200,"height":200,"fit":"fill"}])).dimensions(),
        (200, 200)
    );
    assert_eq!(
        run(json!([{"op":"resize","width":200,"height":200,"fit":"cover"}])).dimensions(),
        (200, 200)
    );
    assert_eq!(
        run(json!([{"op":"resize","width":200,"height":200,"fit":"inside"}])).dimensions(),
        (200, 133)
    );
    assert_eq!(
        run(json!([{"op":"crop","aspect":"1:1","gravity":"center"}])).dimensions(),
        (300, 300)
    );
    assert_eq!(
        run(json!([{"op":"crop","aspect":"16:9","gravity":"smart"}])).dimensions(),
        (451, 253)
    );
}

#[test]
fn grayscale_and_sepia_recolor() {
    let g = run(json!([{"op":"recolor","mode":"grayscale"}]));
    assert!(g.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let s = run(json!([{"op":"recolor","mode":"sepia"}]));
    assert!(mean(&s, 0) > mean(&s, 1) && mean(&s, 1) > mean(&s, 2));
    let half = run(json!([{"op":"recolor","mode":"grayscale","amount":0.5}]));
    let src = original();
    let spread = |img: &RgbImage| (mean(img, 0) - mean(img, 2)).abs();
    assert!(spread(&half) < spread(&src) && spread(&half) > spread(&g));
}

#[test]
fn hue_rotate_and_tint_shift_colour() {
    let src = original();
    let h = run(json!([{"op":"recolor","mode":"hue_rotate","degrees":180}]));
    // The cat is warm (red over blue); turned half way round it is cool.
    assert!(mean(&src, 0) > mean(&src, 2));
    assert!(mean(&h, 2) > mean(&h, 0));
    let t = run(json!([{"op":"recolor","mode":"tint","color":"#0000ff"}]));
    assert!(mean(&t, 2) > 2.0 * mean(&t, 0));
}

#[test]
fn contrast_and_brightness_move_statistics() {
    let base = luma_stddev(&original());
    assert!(luma_stddev(&run(json!([{"op":"contrast","amount":0.5}]))) > base * 1.1);
    assert!(luma_stddev(&run(json!([{"op":"contrast","amount":-0.5}]))) < base * 0.9);
    let same = run(json!([{"op":"contrast","amount":0.0}]));
    assert_eq!(same, original());
    let m = mean(&original(), 1);
    assert!(mean(&run(json!([{"op":"brightness","amount":0.3}])), 1) > m + 30.0);
    assert!(mean(&run(json!([{"op":"brightness","amount":-0.3}])), 1) < m - 30.0);
}

#[test]
fn blur_and_sharpen_change_detail() {
    let base = detail(&original());
    assert!(detail(&run(json!([{"op":"blur","sigma":2.0}]))) < base * 0.6);
    assert!(detail(&run(json!([{"op":"sharpen","amount":2.0}]))) > base * 1.1);
}

#[test]
fn webp_and_png_outputs_decode() {
    for (format, expected) in [
        ("webp", image::ImageFormat::WebP),
        ("png", image::ImageFormat::Png),
    ] {
        let ops = support::ops(json!([{"op":"format","format":format}]));
        let out = support::run(&chelsea(), &ops);
        assert_eq!(image::guess_format(&out.bytes).unwrap(), expected);
        let img = support::decode(&out.bytes);
        assert_eq!((img.width(), img.height()), (451, 300));
    }
}
