//! Colour management: images carrying an ICC profile (Adobe RGB, Display P3,
//! camera profiles...) are converted to sRGB, the colour space of the web and
//! of every output format's default.

use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// `img` converted from the colour space described by `icc` to sRGB. Images
/// whose profile is sRGB already, is not RGB or cannot be read are returned
/// unchanged: a broken profile is not worth failing a photo for.
pub fn to_srgb(img: DynamicImage, icc: &[u8]) -> DynamicImage {
    let Ok(source) = ColorProfile::new_from_slice(icc) else {
        return img;
    };
    if source.color_space != DataColorSpace::Rgb || is_srgb(&source) {
        return img;
    }
    let target = ColorProfile::new_srgb();
    let alpha = img.color().has_alpha();
    let layout = if alpha { Layout::Rgba } else { Layout::Rgb };
    let Ok(transform) =
        source.create_transform_8bit(layout, &target, layout, TransformOptions::default())
    else {
        return img;
    };
    let (w, h) = (img.width(), img.height());
    let src: Vec<u8> = if alpha {
        img.to_rgba8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    };
    let mut dst = vec![0u8; src.len()];
    if transform.transform(&src, &mut dst).is_err() {
        return img;
    }
    let converted = if alpha {
        image::RgbaImage::from_raw(w, h, dst).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(w, h, dst).map(DynamicImage::ImageRgb8)
    };
    converted.unwrap_or(img)
}

/// Most cameras and editors embed an sRGB profile; converting to itself
/// would only cost time.
fn is_srgb(profile: &ColorProfile) -> bool {
    let srgb = ColorProfile::new_srgb();
    let close = |a: f64, b: f64| (a - b).abs() < 0.002;
    let same_primaries = [
        (profile.red_colorant, srgb.red_colorant),
        (profile.green_colorant, srgb.green_colorant),
        (profile.blue_colorant, srgb.blue_colorant),
    ]
    .iter()
    .all(|(p, s)| close(p.x, s.x) && close(p.y, s.y) && close(p.z, s.z));
    let named = profile
        .description
        .as_ref()
        .is_some_and(|d| format!("{d:?}").contains("sRGB"));
    same_primaries || named
}
