//! The image engine: decode once (with limits), apply a recipe's ops in
//! order, encode once. Pure and synchronous; callers run it on a blocking
//! thread.
//!
//! - [`color`]: ICC profiles to sRGB.
//! - [`resize`]: SIMD resizing and JPEG shrink-on-load.
//! - [`retouch`]: red-eye removal and teeth whitening.
//! - [`smart`]: where a smart crop goes.

pub mod color;
pub mod resize;
pub mod retouch;
pub mod smart;

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Rgba, RgbaImage};

use crate::cost::{self, Estimate, Source};
use crate::recipe::{Axis, Fit, Gravity, Op, OutputFormat, RecolorMode, parse_aspect, parse_color};

/// Bounds on what the engine accepts, checked from the header before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest width × height (default 50 MP).
    pub max_pixels: u64,
    /// Largest encoded file (default 50 MiB).
    pub max_bytes: u64,
    /// Largest width or height (default 30 000).
    pub max_dimension: u32,
    /// Most work a recipe may cost, in passes over a `max_pixels` image
    /// (default 64; see [`crate::cost`]).
    pub max_recipe_cost: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            max_bytes: 50 * 1024 * 1024,
            max_dimension: 30_000,
            max_recipe_cost: 64,
        }
    }
}

impl Limits {
    /// The most work, in pixel passes, one recipe may cost.
    pub fn max_work(&self) -> u64 {
        u64::from(self.max_recipe_cost).saturating_mul(self.max_pixels)
    }

    /// Refuses an estimate over the output pixel cap or the work budget.
    pub fn check(&self, estimate: &Estimate) -> Result<(), EngineError> {
        if estimate.largest_output > self.max_pixels {
            return Err(EngineError::OutputTooLarge {
                pixels: estimate.largest_output,
                limit: self.max_pixels,
            });
        }
        if estimate.work > self.max_work() {
            return Err(EngineError::OverBudget {
                passes: estimate.passes_over(self.max_pixels),
                limit: self.max_recipe_cost,
                megapixels: self.max_pixels as f64 / 1e6,
            });
        }
        Ok(())
    }
}

/// Why an image could not be processed. Every variant is permanent: retrying
/// the same bytes and ops gives the same answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("not a supported image (JPEG, PNG, WebP, GIF, TIFF or BMP)")]
    NotAnImage,
    #[error("image is {width}×{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("image is {width}×{height}, over the largest side of {limit} pixels")]
    TooLarge { width: u32, height: u32, limit: u32 },
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooManyBytes { size: u64, limit: u64 },
    #[error(
        "the recipe would make an image of {pixels} pixels, over the limit of {limit} pixels \
         (DARKROOM_MAX_PIXELS); ask for a smaller size"
    )]
    OutputTooLarge { pixels: u64, limit: u64 },
    #[error(
        "the recipe would cost {passes:.0} passes over a {megapixels:.0} MP image, over the \
         budget of {limit} (DARKROOM_MAX_RECIPE_COST); use fewer or lighter ops, or shrink first"
    )]
    OverBudget {
        passes: f64,
        limit: u32,
        megapixels: f64,
    },
    #[error("image is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("{op}: {message}")]
    Op { op: &'static str, message: String },
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// What a file's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel of the decoded image.
    pub bytes_per_pixel: u8,
    /// Whether a JPEG can be decoded at a reduced scale (not CMYK, not
    /// 16-bit); false for other formats.
    pub scalable: bool,
}

impl Probe {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

fn sniff(bytes: &[u8]) -> Result<ImageFormat, EngineError> {
    match image::guess_format(bytes) {
        Ok(
            f @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Tiff
            | ImageFormat::Bmp),
        ) => Ok(f),
        _ => Err(EngineError::NotAnImage),
    }
}

/// Identifies the format from the magic bytes (not the file name).
pub fn sniff_format(prefix: &[u8]) -> Result<ImageFormat, EngineError> {
    sniff(prefix)
}

/// Reads format and dimensions from the start of a file and checks them
/// against `limits`, without decoding pixels.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, EngineError> {
    let format = sniff(bytes)?;
    let probe = if format == ImageFormat::Jpeg {
        // Reads the headers in place; the generic reader copies the file first.
        let header = resize::jpeg_header(bytes).map_err(EngineError::Corrupt)?;
        Probe {
            format,
            width: header.width,
            height: header.height,
            bytes_per_pixel: header.bytes_per_pixel,
            scalable: header.scalable,
        }
    } else {
        let decoder = ImageReader::with_format(Cursor::new(bytes), format)
            .into_decoder()
            .map_err(|e| EngineError::Corrupt(e.to_string()))?;
        let (width, height) = decoder.dimensions();
        Probe {
            format,
            width,
            height,
            bytes_per_pixel: decoder.color_type().bytes_per_pixel(),
            scalable: false,
        }
    };
    check_dimensions(probe.width, probe.height, limits)?;
    Ok(probe)
}

/// The format and quality `ops` end in: their last `format` op, else
/// `default_format`, else the input's (JPEG for JPEG, PNG otherwise).
fn output_format(
    ops: &[Op],
    input: ImageFormat,
    default_format: Option<OutputFormat>,
) -> (OutputFormat, Option<u8>) {
    ops.iter()
        .rev()
        .find_map(|op| match op {
            Op::Format { format, quality } => Some((*format, *quality)),
            _ => None,
        })
        .unwrap_or_else(|| {
            let f = default_format.unwrap_or(match input {
                ImageFormat::Jpeg => OutputFormat::Jpeg,
                _ => OutputFormat::Png,
            });
            (f, None)
        })
}

/// What running `ops` on a file with this header costs, at most (see
/// [`crate::cost`]).
pub fn estimate(
    probe: &Probe,
    file_bytes: u64,
    ops: &[Op],
    default_format: Option<OutputFormat>,
) -> Estimate {
    let source = Source {
        pixels: probe.pixels(),
        decoded_pixels: decoded_pixels(probe, ops),
        bytes_per_pixel: u64::from(probe.bytes_per_pixel),
        file_bytes,
    };
    let (format, _) = output_format(ops, probe.format, default_format);
    cost::estimate(&source, ops, format)
}

fn check_dimensions(width: u32, height: u32, limits: &Limits) -> Result<(), EngineError> {
    if width > limits.max_dimension || height > limits.max_dimension {
        return Err(EngineError::TooLarge {
            width,
            height,
            limit: limits.max_dimension,
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(EngineError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    Ok(())
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
/// input's format (JPEG for JPEG, PNG otherwise).
pub fn process(
    input: &[u8],
    ops: &[Op],
    limits: &Limits,
    default_format: Option<OutputFormat>,
) -> Result<Output, EngineError> {
    // Decoders are third-party code fed untrusted bytes: a panic in one means
    // the file is malformed, a permanent failure like any other corrupt file.
    std::panic::catch_unwind(|| process_unguarded(input, ops, limits, default_format))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(EngineError::Corrupt(format!("the decoder gave up: {what}")))
        })
}

fn process_unguarded(
    input: &[u8],
    ops: &[Op],
    limits: &Limits,
    default_format: Option<OutputFormat>,
) -> Result<Output, EngineError> {
    let size = input.len() as u64;
    if size > limits.max_bytes {
        return Err(EngineError::TooManyBytes {
            size,
            limit: limits.max_bytes,
        });
    }
    let probe = probe(input, limits)?;
    limits.check(&estimate(&probe, size, ops, default_format))?;
    // The JPEG decoder fills a truncated scan with grey instead of failing;
    // a silently half-grey photo is worse than a clear error.
    if probe.format == ImageFormat::Jpeg && !jpeg_is_complete(input) {
        return Err(EngineError::Corrupt(
            "JPEG is truncated (no end-of-image marker)".into(),
        ));
    }
    let mut timings = Vec::with_capacity(ops.len() + 2);
    let started = Instant::now();
    let (mut img, rest) = match shrink_on_load(input, &probe, ops, limits)? {
        Some(img) => (img, &ops[1..]),
        None => (decode(input, probe.format, limits)?, ops),
    };
    timings.push(("decode", started.elapsed()));
    for op in rest {
        let started = Instant::now();
        img = apply(img, op, limits)?;
        timings.push((op.name(), started.elapsed()));
    }
    let (format, quality) = output_format(ops, probe.format, default_format);
    let started = Instant::now();
    let bytes = encode(&img, format, quality.unwrap_or(85))?;
    timings.push(("encode", started.elapsed()));
    Ok(Output {
        bytes,
        width: img.width(),
        height: img.height(),
        format,
        timings,
    })
}

/// Whether a JPEG's main image reaches its end-of-image marker.
///
/// Walks the marker segments up to the first start-of-scan, so markers inside
/// an EXIF thumbnail are skipped, then looks for EOI in the entropy-coded data,
/// where a literal 0xFF is always stuffed and cannot fake one.
fn jpeg_is_complete(data: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            return false;
        }
        let marker = data[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if marker == 0xDA {
            // EOI is almost always at the very end (trailers are rare and
            // short), so search backwards.
            let scan = &data[(i + 2 + len).min(data.len())..];
            return scan.windows(2).rev().any(|w| w == [0xFF, 0xD9]);
        }
        i += 2 + len;
    }
    false
}

/// How the first op is applied to a JPEG decoded already reduced.
enum Shrink {
    /// Resize to exactly this size.
    Exact(u32, u32),
    /// Resize to cover this size, keeping the centre.
    Cover(u32, u32),
}

/// When `op`, the first of a recipe, may shrink an image of `w × h`
/// (oriented) pixels on load: how to apply it, and the least size
/// (oriented) to decode at.
fn shrink_plan(w: u32, h: u32, op: Option<&Op>) -> Option<(Shrink, u32, u32)> {
    match op? {
        Op::Thumbnail { width, height } if w > *width || h > *height => {
            let (fw, fh) = fit_inside(w, h, *width, *height);
            Some((Shrink::Exact(fw, fh), fw, fh))
        }
        Op::Resize {
            width,
            height,
            fit: Fit::Inside,
        } => {
            let (fw, fh) = fit_inside(w, h, *width, *height);
            Some((Shrink::Exact(fw, fh), fw, fh))
        }
        Op::Resize {
            width,
            height,
            fit: Fit::Fill,
        } => Some((Shrink::Exact(*width, *height), *width, *height)),
        Op::Resize {
            width,
            height,
            fit: Fit::Cover,
        } => {
            let scale = f64::max(
                f64::from(*width) / f64::from(w),
                f64::from(*height) / f64::from(h),
            );
            let cw = (f64::from(w) * scale).ceil() as u32;
            let ch = (f64::from(h) * scale).ceil() as u32;
            Some((Shrink::Cover(*width, *height), cw, ch))
        }
        _ => None,
    }
}

/// Pixels the decoder makes for `ops` on this file: fewer than the image's
/// when the first op shrinks a JPEG on load. Bounds both orientations, as
/// the EXIF orientation is not read here.
fn decoded_pixels(probe: &Probe, ops: &[Op]) -> u64 {
    if !probe.scalable {
        return probe.pixels();
    }
    let (w, h) = (probe.width, probe.height);
    let at = |need: Option<(u32, u32)>| match need {
        Some((nw, nh)) => {
            let d = resize::dct_scale(w, h, nw, nh);
            u64::from(w.div_ceil(d)) * u64::from(h.div_ceil(d))
        }
        None => probe.pixels(),
    };
    let upright = shrink_plan(w, h, ops.first()).map(|(_, nw, nh)| (nw, nh));
    let transposed = shrink_plan(h, w, ops.first()).map(|(_, nw, nh)| (nh, nw));
    at(upright).max(at(transposed))
}

/// When the first op shrinks a JPEG at least twofold, decodes it already
/// reduced by the DCT and applies that op exactly (geometry computed from the
/// full-size dimensions, so the output matches the slow path's size).
fn shrink_on_load(
    input: &[u8],
    probe: &Probe,
    ops: &[Op],
    limits: &Limits,
) -> Result<Option<DynamicImage>, EngineError> {
    if probe.format != ImageFormat::Jpeg {
        return Ok(None);
    }
    let orientation = resize::jpeg_orientation(input);
    let transposed = resize::transposes(orientation);
    // Oriented dimensions, as the ops see them.
    let (w, h) = if transposed {
        (probe.height, probe.width)
    } else {
        (probe.width, probe.height)
    };
    let Some((plan, need_w, need_h)) = shrink_plan(w, h, ops.first()) else {
        return Ok(None);
    };
    let (need_w, need_h) = if transposed {
        (need_h, need_w)
    } else {
        (need_w, need_h)
    };
    let Some((mut img, icc)) = resize::decode_jpeg_scaled(input, need_w, need_h, limits.max_pixels)
    else {
        return Ok(None);
    };
    if let Some(icc) = icc {
        img = color::to_srgb(img, &icc);
    }
    img.apply_orientation(orientation);
    if let Some(first) = ops.first() {
        let (ow, oh) = match plan {
            Shrink::Exact(w, h) | Shrink::Cover(w, h) => (w, h),
        };
        check_output(first.name(), ow, oh, limits)?;
    }
    Ok(Some(match plan {
        Shrink::Exact(fw, fh) => resize::resize_exact(&img, fw, fh),
        Shrink::Cover(cw, ch) => resize::resize_cover(&img, cw, ch),
    }))
}

fn decode(input: &[u8], format: ImageFormat, limits: &Limits) -> Result<DynamicImage, EngineError> {
    let mut reader = ImageReader::with_format(Cursor::new(input), format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_dimension);
    image_limits.max_image_height = Some(limits.max_dimension);
    // RGBA16 of the largest allowed image, plus decoder scratch.
    image_limits.max_alloc = Some(limits.max_pixels * 8 + 64 * 1024 * 1024);
    reader.limits(image_limits);
    let corrupt = |e: image::ImageError| EngineError::Corrupt(e.to_string());
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let orientation = decoder.orientation().map_err(corrupt)?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if let Some(icc) = icc {
        img = color::to_srgb(img, &icc);
    }
    img.apply_orientation(orientation);
    Ok(img)
}

fn op_error(op: &'static str, message: impl Into<String>) -> EngineError {
    EngineError::Op {
        op,
        message: message.into(),
    }
}

/// Size that fits `(w, h)` inside `(bw, bh)` keeping the aspect ratio.
fn fit_inside(w: u32, h: u32, bw: u32, bh: u32) -> (u32, u32) {
    let scale = f64::min(f64::from(bw) / f64::from(w), f64::from(bh) / f64::from(h));
    let nw = (f64::from(w) * scale).round().max(1.0) as u32;
    let nh = (f64::from(h) * scale).round().max(1.0) as u32;
    (nw.min(bw), nh.min(bh))
}

/// Refuses an op that would make an image over the output pixel cap,
/// before it allocates it.
fn check_output(op: &'static str, w: u32, h: u32, limits: &Limits) -> Result<(), EngineError> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > limits.max_pixels {
        return Err(op_error(
            op,
            format!(
                "would make a {w}×{h} image ({pixels} pixels), over the limit of {} pixels \
                 (DARKROOM_MAX_PIXELS)",
                limits.max_pixels
            ),
        ));
    }
    Ok(())
}

fn apply(img: DynamicImage, op: &Op, limits: &Limits) -> Result<DynamicImage, EngineError> {
    let (w, h) = (img.width(), img.height());
    Ok(match op {
        Op::Thumbnail { width, height } => {
            if w <= *width && h <= *height {
                img
            } else {
                let (nw, nh) = fit_inside(w, h, *width, *height);
                check_output("thumbnail", nw, nh, limits)?;
                resize::resize_exact(&img, nw, nh)
            }
        }
        Op::Resize { width, height, fit } => {
            let (nw, nh) = match fit {
                Fit::Inside => fit_inside(w, h, *width, *height),
                Fit::Fill | Fit::Cover => (*width, *height),
            };
            check_output("resize", nw, nh, limits)?;
            match fit {
                Fit::Cover => resize::resize_cover(&img, nw, nh),
                Fit::Fill | Fit::Inside => resize::resize_exact(&img, nw, nh),
            }
        }
        Op::Crop {
            x,
            y,
            width,
            height,
            aspect,
            gravity,
        } => {
            let (cx, cy, cw, ch) = match (aspect, width, height) {
                (Some(aspect), _, _) => {
                    let (aw, ah) = parse_aspect(aspect).map_err(|(_, m)| op_error("crop", m))?;
                    aspect_rect(&img, aw, ah, gravity.unwrap_or_default())
                }
                (None, Some(cw), Some(ch)) => (x.unwrap_or(0), y.unwrap_or(0), *cw, *ch),
                _ => return Err(op_error("crop", "needs a rectangle or an aspect")),
            };
            if cx >= w || cy >= h {
                return Err(op_error(
                    "crop",
                    format!("origin ({cx},{cy}) is outside the {w}×{h} image"),
                ));
            }
            // A rectangle reaching past the edge is clipped to the image, as
            // imgproxy and libvips do.
            let (cw, ch) = (cw.min(w - cx), ch.min(h - cy));
            check_output("crop", cw, ch, limits)?;
            img.crop_imm(cx, cy, cw, ch)
        }
        Op::Rotate { degrees } => {
            check_output("rotate", h, w, limits)?;
            match degrees {
                90 => img.rotate90(),
                180 => img.rotate180(),
                270 => img.rotate270(),
                _ => return Err(op_error("rotate", "degrees must be 90, 180 or 270")),
            }
        }
        Op::Flip { axis } => match axis {
            Axis::Horizontal => img.fliph(),
            Axis::Vertical => img.flipv(),
        },
        Op::Blur { sigma } => {
            if *sigma <= 0.0 {
                img
            } else {
                img.blur(*sigma)
            }
        }
        Op::Sharpen { amount } => {
            if *amount <= 0.0 {
                img
            } else {
                img.unsharpen(1.0, (10.0 / amount).clamp(0.0, 255.0) as i32)
            }
        }
        Op::Contrast { amount } => {
            if *amount == 0.0 {
                img
            } else {
                img.adjust_contrast(amount * 100.0)
            }
        }
        Op::Brightness { amount } => img.brighten((amount * 255.0).round() as i32),
        Op::Recolor {
            mode,
            degrees,
            color,
            amount,
        } => {
            let amount = amount.unwrap_or(1.0);
            match mode {
                RecolorMode::Grayscale => blend_map(img, amount, |[r, g, b]| {
                    let l = luma(r, g, b);
                    [l, l, l]
                }),
                RecolorMode::Sepia => blend_map(img, amount, |[r, g, b]| {
                    [
                        0.393 * r + 0.769 * g + 0.189 * b,
                        0.349 * r + 0.686 * g + 0.168 * b,
                        0.272 * r + 0.534 * g + 0.131 * b,
                    ]
                }),
                RecolorMode::HueRotate => {
                    let rotated = img.huerotate(degrees.unwrap_or(0.0).round() as i32);
                    if amount >= 1.0 {
                        rotated
                    } else {
                        mix(&img, &rotated, amount)
                    }
                }
                RecolorMode::Tint => {
                    let [tr, tg, tb] = parse_color(color.as_deref().unwrap_or("#000000"))
                        .map_err(|(_, m)| op_error("recolor", m))?;
                    let tint = [f32::from(tr), f32::from(tg), f32::from(tb)];
                    blend_map(img, amount, move |[r, g, b]| {
                        let l = luma(r, g, b) / 255.0;
                        [tint[0] * l, tint[1] * l, tint[2] * l]
                    })
                }
            }
        }
        Op::RedEye { region } => {
            let mut rgba = img.into_rgba8();
            retouch::red_eye(&mut rgba, *region);
            DynamicImage::ImageRgba8(rgba)
        }
        Op::TeethWhiten { strength, region } => {
            let mut rgba = img.into_rgba8();
            retouch::teeth_whiten(&mut rgba, *strength, *region);
            DynamicImage::ImageRgba8(rgba)
        }
        Op::Format { .. } => img,
    })
}

fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// Applies `f` to every pixel's RGB and blends it with the original by `amount`.
fn blend_map(img: DynamicImage, amount: f32, f: impl Fn([f32; 3]) -> [f32; 3]) -> DynamicImage {
    let mut rgba = img.into_rgba8();
    for Rgba(p) in rgba.pixels_mut() {
        let src = [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])];
        let dst = f(src);
        for c in 0..3 {
            p[c] = (src[c] + (dst[c] - src[c]) * amount)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
    DynamicImage::ImageRgba8(rgba)
}

fn mix(a: &DynamicImage, b: &DynamicImage, amount: f32) -> DynamicImage {
    let a = a.to_rgba8();
    let b = b.to_rgba8();
    let out = RgbaImage::from_fn(a.width(), a.height(), |x, y| {
        let (pa, pb) = (a.get_pixel(x, y), b.get_pixel(x, y));
        let mut p = *pa;
        for c in 0..3 {
            let v = f32::from(pa[c]) + (f32::from(pb[c]) - f32::from(pa[c])) * amount;
            p[c] = v.round().clamp(0.0, 255.0) as u8;
        }
        p
    });
    DynamicImage::ImageRgba8(out)
}

/// The largest `aw:ah` rectangle inside the image, placed by `gravity`.
fn aspect_rect(img: &DynamicImage, aw: u32, ah: u32, gravity: Gravity) -> (u32, u32, u32, u32) {
    let (w, h) = (img.width(), img.height());
    let (cw, ch) = aspect_size(w, h, aw, ah);
    let (mx, my) = ((w - cw) / 2, (h - ch) / 2);
    match gravity {
        Gravity::Center => (mx, my, cw, ch),
        Gravity::North => (mx, 0, cw, ch),
        Gravity::South => (mx, h - ch, cw, ch),
        Gravity::West => (0, my, cw, ch),
        Gravity::East => (w - cw, my, cw, ch),
        Gravity::Smart => {
            let (x, y) = smart::smart_origin(img, cw, ch);
            (x, y, cw, ch)
        }
    }
}

/// Size of the largest `aw:ah` rectangle inside `w×h`.
fn aspect_size(w: u32, h: u32, aw: u32, ah: u32) -> (u32, u32) {
    let (cw, ch) = if u64::from(w) * u64::from(ah) > u64::from(h) * u64::from(aw) {
        ((u64::from(h) * u64::from(aw) / u64::from(ah)) as u32, h)
    } else {
        (w, (u64::from(w) * u64::from(ah) / u64::from(aw)) as u32)
    };
    (cw.clamp(1, w), ch.clamp(1, h))
}

fn encode(img: &DynamicImage, format: OutputFormat, quality: u8) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    let enc = |e: image::ImageError| EngineError::Encode(e.to_string());
    match format {
        OutputFormat::Jpeg => {
            let rgb = flatten_on_white(img);
            JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(&rgb)
                .map_err(enc)?;
        }
        OutputFormat::Png => {
            let img = to_8bit(img);
            img.write_with_encoder(PngEncoder::new(&mut out))
                .map_err(enc)?;
        }
        OutputFormat::Webp => {
            // The `image` crate encodes lossless WebP only, so quality is unused.
            let rgba = img.to_rgba8();
            rgba.write_with_encoder(WebPEncoder::new_lossless(&mut out))
                .map_err(enc)?;
        }
    }
    Ok(out)
}

fn to_8bit(img: &DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => img.clone(),
        _ if img.color().has_alpha() => DynamicImage::ImageRgba8(img.to_rgba8()),
        _ => DynamicImage::ImageRgb8(img.to_rgb8()),
    }
}

/// JPEG has no alpha: composite onto white rather than letting
/// transparent pixels turn black.
fn flatten_on_white(img: &DynamicImage) -> DynamicImage {
    if !img.color().has_alpha() {
        return match img {
            DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img.clone(),
            _ => DynamicImage::ImageRgb8(img.to_rgb8()),
        };
    }
    let rgba = img.to_rgba8();
    let rgb = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let Rgba([r, g, b, a]) = *rgba.get_pixel(x, y);
        let a = u16::from(a);
        let over = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([over(r), over(g), over(b)])
    });
    DynamicImage::ImageRgb8(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_inside_keeps_aspect() {
        assert_eq!(fit_inside(640, 427, 256, 256), (256, 171));
        assert_eq!(fit_inside(300, 600, 100, 100), (50, 100));
    }

    #[test]
    fn aspect_rect_is_largest_and_placed_by_gravity() {
        let img = DynamicImage::new_rgb8(1600, 1000);
        assert_eq!(
            aspect_rect(&img, 16, 9, Gravity::Center),
            (0, 50, 1600, 900)
        );
        assert_eq!(
            aspect_rect(&img, 16, 9, Gravity::South),
            (0, 100, 1600, 900)
        );
        let square = DynamicImage::new_rgb8(1000, 1000);
        assert_eq!(aspect_rect(&square, 1, 2, Gravity::West), (0, 0, 500, 1000));
        assert_eq!(
            aspect_rect(&square, 1, 2, Gravity::East),
            (500, 0, 500, 1000)
        );
    }

    #[test]
    fn garbage_is_not_an_image() {
        assert!(matches!(
            probe(b"hello, world, this is text", &Limits::default()),
            Err(EngineError::NotAnImage)
        ));
    }
}
