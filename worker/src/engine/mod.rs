//! The image engine: decode once (with limits), apply a recipe's ops in
//! order, encode once. Pure and synchronous; a worker runs it in a child
//! process per image (see `crate::isolate`).
//!
//! One module per step of the pipeline; [`apply`] only dispatches:
//! - [`codec`]: decode (EXIF orientation), encode, the EXIF an output keeps.
//! - [`shrink`]: decode already reduced when the first op shrinks (JPEG by
//!   DCT scaling, PNG by averaging rows as they inflate, WebP by libwebp's
//!   rescaling decoder).
//! - [`geometry`]: thumbnail, resize, crop, rotate, flip.
//! - [`adjust`]: blur, sharpen, contrast, brightness, recolor.
//! - [`retouch`]: red-eye removal and teeth whitening.
//! - [`faces`]: where the faces are, for retouching and smart crops.
//! - [`smart`]: where a smart crop goes.
//! - [`color`]: ICC profiles to sRGB, or kept with the image.

mod adjust;
mod codec;
mod color;
pub mod faces;
mod geometry;
pub mod retouch;
mod shrink;
pub mod smart;

use std::time::{Duration, Instant};

use common::Limits;
use common::limits::LimitError;
use common::probe::{self, InputFormat, ProbeError};
use common::recipe::{Op, OutputFormat};
use image::DynamicImage;

use geometry::CropBy;

/// Why an image could not be processed. Every variant is permanent: retrying
/// the same bytes and ops gives the same answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Code of ours or a codec's panicked. Kept apart from [`Self::Corrupt`]
    /// so that tests and fuzzing see it and operators count it: a panic is
    /// a bug to fix even when the file was malformed.
    #[error("internal error in the image engine (a bug, not a fault of this file): {0}")]
    Panicked(String),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("image is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("{op}: {message}")]
    Op { op: &'static str, message: String },
    #[error("encoding failed: {0}")]
    Encode(String),
}

fn op_error(op: &'static str, message: impl Into<String>) -> EngineError {
    EngineError::Op {
        op,
        message: message.into(),
    }
}

/// The result of a recipe.
#[derive(Clone)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    /// How long each step took: `decode` (with the first op when it shrank
    /// on load), each further op by name, `encode`.
    pub timings: Vec<(&'static str, Duration)>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("bytes", &self.bytes.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("format", &self.format)
            .finish()
    }
}

/// Decodes `input`, applies `ops` in order and encodes the result.
///
/// `default_format` is used when no `format` op is given; `None` means the
/// input's (see [`probe::output_encoding`]).
pub fn process(
    input: &[u8],
    ops: &[Op],
    limits: &Limits,
    default_format: Option<OutputFormat>,
) -> Result<Output, EngineError> {
    // Decoders are third-party code fed untrusted bytes: a panic must fail
    // this image, not the worker's other images.
    std::panic::catch_unwind(|| process_unguarded(input, ops, limits, default_format))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(EngineError::Panicked(what))
        })
}

fn process_unguarded(
    input: &[u8],
    ops: &[Op],
    limits: &Limits,
    default_format: Option<OutputFormat>,
) -> Result<Output, EngineError> {
    let size = input.len() as u64;
    limits.check_size(size)?;
    let probe = probe::probe(input, limits)?;
    limits.check(&probe::estimate(&probe, size, ops, default_format))?;
    // The JPEG decoder fills a truncated scan with grey instead of failing;
    // a silently half-grey photo is worse than a clear error.
    if probe.format == InputFormat::Jpeg && !codec::jpeg_is_complete(input) {
        return Err(EngineError::Corrupt(
            "JPEG is truncated (no end-of-image marker)".into(),
        ));
    }
    let encoding = probe::output_encoding(ops, probe.format, default_format);
    let mut timings = Vec::with_capacity(ops.len() + 2);
    let started = Instant::now();
    let (decoded, shrunk) = match shrink::decode_reduced(input, &probe, ops, limits)? {
        Some((decoded, plan)) => (decoded, Some(plan)),
        None => (codec::decode(input, probe.format, limits)?, None),
    };
    let (mut img, icc) = color::settle(decoded.image, decoded.colours, encoding.keep_icc);
    let rest = match shrunk {
        Some(plan) => {
            img = shrink::apply_first(&img, plan, ops, limits)?;
            &ops[1..]
        }
        None => ops,
    };
    timings.push(("decode", started.elapsed()));
    for op in rest {
        let started = Instant::now();
        img = apply(img, op, limits)?;
        timings.push((op.name(), started.elapsed()));
    }
    let embedded = codec::Embedded {
        icc,
        exif: codec::kept_exif(input, probe.format, encoding.metadata()),
    };
    let started = Instant::now();
    let bytes = codec::encode(&img, &encoding, embedded)?;
    timings.push(("encode", started.elapsed()));
    Ok(Output {
        bytes,
        width: img.width(),
        height: img.height(),
        format: encoding.format,
        timings,
    })
}

/// Applies one op.
fn apply(img: DynamicImage, op: &Op, limits: &Limits) -> Result<DynamicImage, EngineError> {
    match op {
        Op::Thumbnail { width, height } => geometry::thumbnail(img, *width, *height, limits),
        Op::Resize { width, height, fit } => geometry::resize(img, *width, *height, *fit, limits),
        Op::Crop {
            x,
            y,
            width,
            height,
            aspect,
            gravity,
        } => {
            let by = match (aspect, width, height) {
                (Some(aspect), _, _) => CropBy::Aspect {
                    aspect,
                    gravity: gravity.unwrap_or_default(),
                },
                (None, Some(width), Some(height)) => CropBy::Rect {
                    x: x.unwrap_or(0),
                    y: y.unwrap_or(0),
                    width: *width,
                    height: *height,
                },
                _ => return Err(op_error("crop", "needs a rectangle or an aspect")),
            };
            geometry::crop(img, by, limits)
        }
        Op::Rotate { degrees } => geometry::rotate(img, *degrees, limits),
        Op::Flip { axis } => Ok(geometry::flip(img, *axis)),
        Op::Blur { sigma } => Ok(adjust::blur(img, *sigma)),
        Op::Sharpen { amount } => Ok(adjust::sharpen(img, *amount)),
        Op::Contrast { amount } => Ok(adjust::contrast(img, *amount)),
        Op::Brightness { amount } => Ok(adjust::brightness(img, *amount)),
        Op::Recolor {
            mode,
            degrees,
            color,
            amount,
        } => adjust::recolor(img, *mode, *degrees, color.as_deref(), *amount),
        Op::RedEye { region } => Ok(retouch::red_eye_image(img, *region)),
        Op::TeethWhiten { strength, region } => {
            Ok(retouch::teeth_whiten_image(img, *strength, *region))
        }
        Op::Format(_) => Ok(img),
    }
}

#[cfg(test)]
mod tests {
    use common::recipe::{Fit, Gravity};

    use super::*;

    fn cap(max_pixels: u64) -> Limits {
        Limits {
            max_pixels,
            ..Limits::default()
        }
    }

    fn rect(x: u32, y: u32, width: u32, height: u32) -> Op {
        Op::Crop {
            x: Some(x),
            y: Some(y),
            width: Some(width),
            height: Some(height),
            aspect: None,
            gravity: None,
        }
    }

    /// `op` on a `w × h` image under `cap`: the size made, or the op named
    /// by its refusal.
    fn outcome(w: u32, h: u32, op: &Op, cap: &Limits) -> Result<(u32, u32), String> {
        match apply(DynamicImage::new_rgb8(w, h), op, cap) {
            Ok(img) => Ok((img.width(), img.height())),
            Err(EngineError::Op { op, message }) if message.contains("DARKROOM_MAX_PIXELS") => {
                Err(op.to_owned())
            }
            Err(e) => panic!("{op:?} on {w}×{h}: {e}"),
        }
    }

    /// `process` refuses what its estimate puts over the cap before it
    /// decodes, so only this check stands between a request the estimate
    /// got wrong and an allocation of any size. Each op is judged by what
    /// it makes of the image in hand: one pixel over the cap is refused,
    /// the cap itself is made.
    #[test]
    fn each_geometry_op_refuses_to_make_an_image_over_the_pixel_cap() {
        let resize = |width, height, fit| Op::Resize { width, height, fit };
        let cases = [
            (10, 10, resize(100, 100, Fit::Fill), (100, 100)),
            (10, 10, resize(100, 100, Fit::Cover), (100, 100)),
            // Judged by the 100×100 it makes, not the 200×100 box.
            (10, 10, resize(200, 100, Fit::Inside), (100, 100)),
            (
                100,
                100,
                Op::Thumbnail {
                    width: 60,
                    height: 60,
                },
                (60, 60),
            ),
            // Judged once clipped to the image: 50×50, not 80×80.
            (100, 100, rect(50, 50, 80, 80), (50, 50)),
            (
                100,
                50,
                Op::Crop {
                    x: None,
                    y: None,
                    width: None,
                    height: None,
                    aspect: Some("1:1".into()),
                    gravity: Some(Gravity::Center),
                },
                (50, 50),
            ),
            (100, 50, Op::Rotate { degrees: 90 }, (50, 100)),
        ];
        for (w, h, op, (mw, mh)) in cases {
            let made = u64::from(mw) * u64::from(mh);
            assert_eq!(outcome(w, h, &op, &cap(made)), Ok((mw, mh)), "{op:?}");
            assert_eq!(
                outcome(w, h, &op, &cap(made - 1)),
                Err(op.name().to_owned()),
                "{op:?} on {w}×{h} made more than the cap"
            );
        }
    }
}
