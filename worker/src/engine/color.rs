//! Colour management: images carrying an ICC profile (Adobe RGB, Display P3,
//! camera profiles...) or naming their colours by code point (a HEIF's
//! `nclx`) are converted to sRGB, the colour space of the web and
//! of every output format's default — or, when a recipe asks to keep their
//! gamut (`keep_icc`), left as they are with the profile that describes
//! them, for the encoder to embed.

use image::DynamicImage;
use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    ToneReprCurve, TransferCharacteristics, TransformOptions,
};

/// What colours an image's samples stand for, as its file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Colours {
    /// Nothing said: sRGB, as the web takes such images.
    #[default]
    Srgb,
    /// An embedded ICC profile.
    Icc(Vec<u8>),
    /// Code points of a HEIF's `nclx` box (ITU-T H.273).
    Cicp { primaries: u8, transfer: u8 },
}

/// `img`, whose samples stand for `colours`, in sRGB; or, with `keep`, as
/// it is beside the ICC profile that describes it (`None` when that is
/// sRGB or nothing can describe it, the image then being converted as
/// without `keep`).
pub fn settle(img: DynamicImage, colours: Colours, keep: bool) -> (DynamicImage, Option<Vec<u8>>) {
    let source = match &colours {
        Colours::Srgb => None,
        Colours::Icc(icc) => ColorProfile::new_from_slice(icc)
            .ok()
            .filter(|p| p.color_space == DataColorSpace::Rgb && !is_srgb(p)),
        Colours::Cicp {
            primaries,
            transfer,
        } => cicp_profile(*primaries, *transfer),
    };
    let Some(source) = source else {
        return (img, None);
    };
    if !keep {
        return (from_profile(img, &source), None);
    }
    let icc = match colours {
        Colours::Icc(icc) => Some(icc),
        _ => source.encode().ok(),
    };
    match icc {
        Some(icc) => (img, Some(icc)),
        None => (from_profile(img, &source), None),
    }
}

/// The profile of the colours a HEIF's `nclx` box names by code point
/// (ITU-T H.273), as phones other than iPhones and most AVIF encoders
/// describe Display P3 or BT.2020 photos instead of embedding a profile.
/// The SDR transfer functions of video standards (BT.709, BT.601, BT.2020)
/// are taken as sRGB's, as browsers show such images. `None` for sRGB, for
/// PQ and HLG (HDR, which libheif has reduced to 8 bits) and for codes with
/// no chromaticities: those images are left as they are.
fn cicp_profile(primaries: u8, transfer: u8) -> Option<ColorProfile> {
    let (Ok(primaries), Ok(transfer)) = (
        CicpColorPrimaries::try_from(primaries),
        TransferCharacteristics::try_from(transfer),
    ) else {
        return None;
    };
    use TransferCharacteristics as T;
    let transfer = match transfer {
        T::Unspecified | T::Srgb | T::Bt709 | T::Bt601 | T::Bt202010bit | T::Bt202012bit => T::Srgb,
        T::Smpte2084 | T::Hlg => return None,
        other => other,
    };
    let srgb = matches!(
        primaries,
        CicpColorPrimaries::Bt709 | CicpColorPrimaries::Unspecified
    ) && transfer == T::Srgb;
    let known = moxcms::ColorPrimaries::try_from(primaries).is_ok()
        && ToneReprCurve::try_from(transfer).is_ok();
    if srgb || !known {
        return None;
    }
    Some(ColorProfile::new_from_cicp(CicpProfile {
        color_primaries: primaries,
        transfer_characteristics: transfer,
        matrix_coefficients: MatrixCoefficients::Identity,
        full_range: true,
    }))
}

/// `img`, whose colours `source` describes, converted to sRGB; unchanged
/// where no transform can be made.
fn from_profile(img: DynamicImage, source: &ColorProfile) -> DynamicImage {
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
