//! What a recipe costs, known before any pixel is decoded: the largest image
//! any step makes, the work in pixel passes and the memory at its peak.
//!
//! The web server refuses, at job creation, a recipe whose work on the
//! largest image it accepts is over the budget (`DARKROOM_MAX_RECIPE_COST`)
//! or whose resize would make an image over the pixel cap
//! (`DARKROOM_MAX_PIXELS`); it charges each uploaded file the work of its real
//! size to the client's work rate. A worker admits each message by the memory
//! its real input needs (`DARKROOM_WORKER_MAX_MEMORY`).
//!
//! Work is counted in *passes*: one pass is one simple operation (a flip)
//! on every pixel of an image, about 2.4 ns per pixel on one core of the
//! machine the README's benchmarks ran on. Each step is charged its weight
//! times the pixels of the larger of its input and output; the weights are
//! each op's time on a 12 MP photo (release build, one core), in passes:
//!
//! | step | passes |
//! |---|---:|
//! | decode: JPEG XL (jxl-oxide), any other format | 45, 3 |
//! | encode: JPEG, PNG | 10, 4 |
//! | encode: WebP lossy, lossless | 15, 50 |
//! | encode: AVIF at speed 0 to 10 (default 5) | 1600 to 30 (100) |
//! | crop, flip | 1 |
//! | rotate, brightness, resize, thumbnail, smart crop | 2 |
//! | recolor | 4 (a partial hue rotation: 20) |
//! | contrast | 5 |
//! | red eye | 10 |
//! | sharpen | 13 |
//! | teeth whitening | 25 |
//! | blur σ | 1 + 2σ |
//!
//! Memory is the peak of what each step holds at once: the encoded input,
//! the step's input and output images, its scratch buffers, and for the
//! encoder a converted copy and the growing output. The test
//! `memory_estimate_bounds_what_every_op_uses` runs every op under its own
//! estimate as a hard memory limit.
//!
//! Estimates are upper bounds: sizes are bounded from the ops alone (a
//! thumbnail is at most its box and at most its input), never guessed low.
//! The arithmetic saturates: a forged request's absurd parameter (a blur σ
//! of 10³⁰) must come out as the most work and memory there is, over any
//! budget, where wrapping would make it cheap in a release build.

use crate::recipe::{Encoding, Fit, Gravity, Op, OutputFormat, RecolorMode};

/// What decoding a format costs per pixel it makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoding {
    /// Work, in tenths of a pass.
    pub tenths: u64,
    /// Bytes the decoder holds beside the image it is making.
    pub scratch_bytes: u64,
}

/// Every decoder but JPEG XL's: about 3 passes, and its own rows and tables.
pub const DECODING: Decoding = Decoding {
    tenths: 30,
    scratch_bytes: 1,
};

/// jxl-oxide, pure Rust on one thread, on a 12 MP photo: 0.59 s and 28 bytes
/// a pixel at its peak for a lossy file (it renders in 32-bit float
/// planes), 1.24 s and 11 bytes for a lossless one. Bounded by the slower
/// of each, as its header does not tell which it is.
pub const JXL_DECODING: Decoding = Decoding {
    tenths: 450,
    scratch_bytes: 32,
};

/// The input an estimate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// Width × height of the image as stored.
    pub pixels: u64,
    /// Pixels the decoder makes: fewer than `pixels` when a JPEG is shrunk
    /// on load (decoded at 1/2, 1/4 or 1/8 scale for a first op that shrinks).
    pub decoded_pixels: u64,
    /// Bytes per pixel of the decoded image (3 for RGB, 8 for RGBA16, ...).
    pub bytes_per_pixel: u64,
    /// Size of the encoded file.
    pub file_bytes: u64,
    /// What its format's decoder costs.
    pub decoding: Decoding,
}

impl Source {
    /// The worst input the limits allow: `max_pixels` of 16-bit RGBA, no
    /// shrink on load, decoded by `decoding`. Used to judge a recipe before
    /// any image is known ([`DECODING`]: a JPEG XL's slower decoder is
    /// judged on each file, so that recipes are not refused for the one
    /// format).
    pub fn worst(max_pixels: u64, max_file_bytes: u64, decoding: Decoding) -> Self {
        Source {
            pixels: max_pixels,
            decoded_pixels: max_pixels,
            bytes_per_pixel: 8,
            file_bytes: max_file_bytes,
            decoding,
        }
    }
}

/// What running a recipe on a [`Source`] costs, at most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// The largest image (pixels) any op makes.
    pub largest_output: u64,
    /// Work, in pixel passes (see the module's table).
    pub work: u64,
    /// Peak memory of the process running it, in bytes.
    pub memory: u64,
}

impl Estimate {
    /// Work in passes over an image of `pixels`: what the recipe budget is
    /// expressed in.
    pub fn passes_over(&self, pixels: u64) -> f64 {
        self.work as f64 / pixels.max(1) as f64
    }

    /// Work in megapixel passes: what a client's work rate is charged.
    pub fn megapixel_passes(&self) -> u64 {
        self.work.div_ceil(1_000_000)
    }
}

/// Memory of a process before it holds any image: code (a debug build has
/// more), runtime, buffers.
const BASE_MEMORY: u64 = 32 << 20;

/// One step's weight in tenths of a pass (a blur's 2σ keeps its fraction),
/// its scratch memory in bytes per pixel beyond its input and output images,
/// and whether it leaves the image as 8-bit RGBA.
fn weight(op: &Op) -> (u64, u64, bool) {
    match op {
        Op::Crop {
            gravity: Some(Gravity::Smart),
            ..
        } => (20, 4, false),
        Op::Crop { .. } | Op::Flip { .. } => (10, 0, false),
        Op::Rotate { .. } | Op::Brightness { .. } => (20, 0, false),
        Op::Thumbnail { .. } | Op::Resize { .. } => (20, 0, false),
        Op::Recolor {
            mode: RecolorMode::HueRotate,
            amount: Some(a),
            ..
        } if *a < 1.0 => (200, 12, true),
        Op::Recolor {
            mode: RecolorMode::HueRotate,
            ..
        } => (40, 0, false),
        Op::Recolor { .. } => (40, 4, true),
        Op::Contrast { .. } => (50, 0, false),
        Op::RedEye { .. } => (100, 8, true),
        Op::Sharpen { .. } => (130, 24, false),
        Op::TeethWhiten { .. } => (250, 8, true),
        // `as` saturates a σ too large for u64 (and makes NaN 0).
        Op::Blur { sigma } => (
            10u64.saturating_add((20.0 * f64::from(sigma.max(0.0))).ceil() as u64),
            4,
            false,
        ),
        Op::Format(_) => (0, 0, false),
    }
}

/// Upper bound of the pixels an op makes from an image of `pixels`.
fn output_pixels(op: &Op, pixels: u64) -> u64 {
    let area = |w: &u32, h: &u32| u64::from(*w) * u64::from(*h);
    match op {
        Op::Thumbnail { width, height } => pixels.min(area(width, height)),
        Op::Resize { width, height, fit } => match fit {
            // Scaled inside the box: may enlarge, never past the box.
            Fit::Inside | Fit::Cover | Fit::Fill => area(width, height),
        },
        Op::Crop {
            width: Some(w),
            height: Some(h),
            ..
        } => pixels.min(area(w, h)),
        _ => pixels,
    }
}

/// What an encoder costs per pixel of its input.
struct Encoder {
    /// Work, in tenths of a pass.
    tenths: u64,
    /// A bound on the output (lossless formats can be as large as the raw
    /// pixels).
    output_bytes: u64,
    /// The encoder's own working memory beside its input: libwebp's
    /// lossless hash chains and backward references, libaom's frame
    /// buffers and its YUV copy of the image.
    scratch_bytes: u64,
    /// Working memory whatever the size: libaom's, which depends on the
    /// content more than the size (a smooth 1.5 MP image took 245 MB in
    /// libvips and here, the same pixels with noise 95 MB).
    fixed_bytes: u64,
}

fn encoder(encoding: &Encoding) -> Encoder {
    let (tenths, output_bytes, scratch_bytes) = match encoding.format {
        OutputFormat::Jpeg => (100, 1, 0),
        OutputFormat::Png => (40, 4, 0),
        OutputFormat::Webp if encoding.lossless => (WEBP_LOSSLESS_TENTHS, 4, 40),
        OutputFormat::Webp => (WEBP_LOSSY_TENTHS, 4, 8),
        OutputFormat::Avif => {
            let tenths = AVIF_TENTHS[usize::from(encoding.speed().min(10))];
            if encoding.lossless {
                (tenths * 2, 4, AVIF_SCRATCH)
            } else {
                (tenths, 2, AVIF_SCRATCH)
            }
        }
    };
    let fixed_bytes = if encoding.format == OutputFormat::Avif {
        AVIF_FIXED
    } else {
        0
    };
    Encoder {
        tenths,
        output_bytes,
        scratch_bytes,
        fixed_bytes,
    }
}

/// WebP at libwebp's default method (4).
const WEBP_LOSSY_TENTHS: u64 = 150;
const WEBP_LOSSLESS_TENTHS: u64 = 500;
/// AVIF (libaom) by speed, 0 (slowest) to 10.
const AVIF_TENTHS: [u64; 11] = [16000, 8000, 4000, 2500, 1500, 1000, 700, 500, 400, 300, 300];
const AVIF_SCRATCH: u64 = 40;
const AVIF_FIXED: u64 = 256 << 20;

/// Estimates `ops` on `source`, encoded as `encoding` says.
pub fn estimate(source: &Source, ops: &[Op], encoding: &Encoding) -> Estimate {
    let format = encoding.format;
    // Bytes per pixel of the image in hand: colour is at least RGB by the
    // time it is encoded, and 16-bit images stay as wide.
    let mut bpp = source.bytes_per_pixel.max(3);
    let decoding = source.decoding;
    let mut work_tenths = decoding.tenths.saturating_mul(source.decoded_pixels);
    let mut pixels = source.decoded_pixels;
    let mut largest_output = 0;
    // Decoding holds the file and the image it is making, plus the
    // decoder's own buffers.
    let mut peak = held(
        source,
        &[(pixels, bpp.saturating_add(decoding.scratch_bytes))],
    );
    for op in ops {
        let out = output_pixels(op, pixels);
        let (passes, scratch, rgba) = weight(op);
        let touched = pixels.max(out);
        work_tenths = work_tenths.saturating_add(passes.saturating_mul(touched));
        let out_bpp = if rgba { bpp.max(4) } else { bpp };
        peak = peak.max(held(
            source,
            &[(pixels, bpp), (out, out_bpp), (touched, scratch)],
        ));
        largest_output = largest_output.max(out);
        pixels = out;
        bpp = out_bpp;
    }
    // Encoding holds the image, an 8-bit copy of it (an RGBA image flattened
    // for JPEG needs two), the encoder's scratch, and the output, whose
    // buffer may momentarily be three times its size as it grows.
    let encoder = encoder(encoding);
    work_tenths = work_tenths.saturating_add(encoder.tenths.saturating_mul(pixels));
    let copy = if bpp >= 4 && format == OutputFormat::Jpeg {
        7
    } else {
        bpp
    };
    peak = peak.max(
        held(
            source,
            &[
                (pixels, bpp + copy + encoder.scratch_bytes),
                (pixels, 3 * encoder.output_bytes),
            ],
        )
        .saturating_add(encoder.fixed_bytes),
    );
    Estimate {
        largest_output,
        work: work_tenths.div_ceil(10),
        memory: BASE_MEMORY.saturating_add(peak),
    }
}

/// Bytes held at once: the encoded file and `buffers` of (pixels, bytes
/// per pixel).
fn held(source: &Source, buffers: &[(u64, u64)]) -> u64 {
    buffers
        .iter()
        .fold(source.file_bytes, |sum, &(pixels, bpp)| {
            sum.saturating_add(pixels.saturating_mul(bpp))
        })
}

#[cfg(test)]
mod tests;
