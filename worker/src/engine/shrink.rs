//! Shrink-on-load: when a recipe starts by shrinking an image at least
//! twofold, decode it already reduced instead of whole, then apply that
//! first op exactly (its geometry computed from the full-size dimensions,
//! so the output has the size the slow path gives).
//!
//! - JPEG, every layout (baseline or progressive, 4:4:4 to 4:2:0, grey,
//!   CMYK/YCCK): libjpeg-turbo scales the inverse DCT to 1/2, 1/4 or 1/8,
//!   so most coefficients are never turned into pixels.
//! - PNG (not interlaced): rows are box-filtered as they inflate, so the
//!   full image is never held, only one row of sums.
//! - WebP (still, lossy or lossless): libwebp rescales rows as it decodes
//!   them (the `libwebp` crate of this workspace).
//!
//! Anything else, or a file these decoders refuse, returns `None` and takes
//! the full decoder, which then gives the verdict on it.

use std::io::Cursor;

use common::Limits;
use common::probe::{Probe, Shrink, dct_scale, shrink_plan};
use common::recipe::Op;
use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat};

use super::{EngineError, color, geometry};

/// Decodes `input` reduced for its first op and applies that op, or `None`
/// when the image cannot be, or need not be, shrunk on load.
pub(super) fn shrink_on_load(
    input: &[u8],
    probe: &Probe,
    ops: &[Op],
    limits: &Limits,
) -> Result<Option<DynamicImage>, EngineError> {
    let (orientation, icc) = match probe.format {
        ImageFormat::Jpeg if probe.scalable => jpeg_metadata(input),
        ImageFormat::Png => png_metadata(input),
        ImageFormat::WebP => webp_metadata(input),
        _ => return Ok(None),
    };
    let transposed = transposes(orientation);
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
    let reduced = match probe.format {
        ImageFormat::Jpeg => decode_jpeg_scaled(input, need_w, need_h),
        ImageFormat::Png => decode_png_reduced(input, need_w, need_h),
        _ => decode_webp_reduced(input, need_w, need_h),
    };
    let Some(mut img) = reduced else {
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
        geometry::check_output(first.name(), ow, oh, limits)?;
    }
    Ok(Some(match plan {
        Shrink::Exact(fw, fh) => geometry::resize_exact(&img, fw, fh),
        Shrink::Cover(cw, ch) => geometry::resize_cover(&img, cw, ch),
    }))
}

/// Whether an orientation swaps width and height.
fn transposes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn orientation_of(exif: Option<&[u8]>) -> Orientation {
    exif.and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// A JPEG's EXIF orientation and ICC profile, read from its headers without
/// copying or decoding it.
fn jpeg_metadata(input: &[u8]) -> (Orientation, Option<Vec<u8>>) {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(input));
    if decoder.read_info().is_err() {
        return (Orientation::NoTransforms, None);
    }
    (orientation_of(decoder.exif_data()), decoder.icc_profile())
}

/// Decodes a JPEG with libjpeg-turbo at the smallest DCT scale (1/2, 1/4,
/// 1/8) that is still at least `min_w × min_h` in stored (not yet oriented)
/// pixels, as RGB (or grey for a grayscale JPEG). `None` when no scale
/// shrinks or libjpeg-turbo does not decode the file cleanly (12-bit
/// samples, damage it calls fatal or merely warns about). The probe has
/// already bounded the dimensions.
fn decode_jpeg_scaled(input: &[u8], min_w: u32, min_h: u32) -> Option<DynamicImage> {
    let header = turbojpeg::read_header(input).ok()?;
    let (w, h) = (
        u32::try_from(header.width).ok()?,
        u32::try_from(header.height).ok()?,
    );
    let divisor = dct_scale(w, h, min_w, min_h);
    if divisor == 1 {
        return None;
    }
    if divisor == 8
        && header.is_progressive
        && let Some(img) = dc_scans_only(input).and_then(|fewer| decode_jpeg_at(&fewer, 8))
    {
        return Some(img);
    }
    decode_jpeg_at(input, divisor)
}

/// Decodes a JPEG at 1/`divisor` of its size with libjpeg-turbo.
fn decode_jpeg_at(input: &[u8], divisor: u32) -> Option<DynamicImage> {
    use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

    let mut decoder = Decompressor::new().ok()?;
    let header = decoder.read_header(input).ok()?;
    let factor = ScalingFactor::new(1, usize::try_from(divisor).ok()?);
    decoder.set_scaling_factor(factor).ok()?;
    let scaled = header.scaled(factor);
    let format = match header.colorspace {
        Colorspace::Gray => PixelFormat::GRAY,
        Colorspace::CMYK | Colorspace::YCCK => PixelFormat::CMYK,
        _ => PixelFormat::RGB,
    };
    let mut pixels = vec![0; format.size() * scaled.width * scaled.height];
    let image = Image {
        pixels: pixels.as_mut_slice(),
        width: scaled.width,
        pitch: format.size() * scaled.width,
        height: scaled.height,
        format,
    };
    decoder.decompress(input, image).ok()?;
    let (sw, sh) = (
        u32::try_from(scaled.width).ok()?,
        u32::try_from(scaled.height).ok()?,
    );
    match format {
        PixelFormat::GRAY => {
            image::GrayImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageLuma8)
        }
        PixelFormat::CMYK => {
            image::RgbImage::from_raw(sw, sh, cmyk_to_rgb(&pixels)).map(DynamicImage::ImageRgb8)
        }
        _ => image::RgbImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageRgb8),
    }
}

/// A progressive JPEG without the AC scans that cannot change it at 1/8
/// scale. There libjpeg-turbo turns each 8×8 block of a full-resolution
/// component into one pixel from its DC coefficient alone (a 1×1 inverse
/// DCT); only subsampled components are scaled less and read their AC
/// coefficients. Progressive AC scans hold one component each, so the luma
/// ones, most of the file and of the entropy decoding, can be left out, all
/// but one: a component with no AC coefficient known at all gets its DC
/// smoothed across blocks (libjpeg-turbo's block smoothing for a file cut
/// short), so each keeps its first scan of low frequencies. Every other
/// segment (tables, restart interval, metadata) is kept in order. `None`
/// when the file is not progressive or does not parse.
fn dc_scans_only(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 2);
    out.extend_from_slice(input.get(..2)?);
    // The ids of the components sampled at the frame's full resolution, and
    // of those whose one needed AC scan is already kept.
    let mut full_resolution = Vec::new();
    let mut ac_kept = Vec::new();
    let mut i = 2;
    loop {
        if *input.get(i)? != 0xFF {
            return None;
        }
        let marker = *input.get(i + 1)?;
        match marker {
            // Fill bytes before a marker.
            0xFF => {
                i += 1;
                continue;
            }
            // End of image.
            0xD9 => break,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*input.get(i + 2)?, *input.get(i + 3)?]));
        let segment_end = i + 2 + len;
        let segment = input.get(i..segment_end)?;
        match marker {
            // Progressive DCT, Huffman-coded: precision, height, width, then
            // per component its id, sampling factors (H << 4 | V) and table.
            0xC2 => {
                let components: Vec<(u8, u8)> = segment
                    .get(10..)?
                    .chunks_exact(3)
                    .take(usize::from(*segment.get(9)?))
                    .map(|c| (c[0], c[1]))
                    .collect();
                let max_h = components.iter().map(|c| c.1 >> 4).max()?;
                let max_v = components.iter().map(|c| c.1 & 0xF).max()?;
                full_resolution = components
                    .iter()
                    .filter(|c| c.1 >> 4 == max_h && c.1 & 0xF == max_v)
                    .map(|c| c.0)
                    .collect();
            }
            // Any other start of frame (DHT is C4, JPG C8, DAC CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => return None,
            // Start of scan: its components' ids and tables, then where its
            // spectral range starts (0 for DC).
            0xDA => {
                if full_resolution.is_empty() {
                    return None;
                }
                let count = usize::from(*segment.get(4)?);
                let component = *segment.get(5)?;
                let spectral_start = *segment.get(5 + 2 * count)?;
                let first_pass = *segment.get(7 + 2 * count)? >> 4 == 0;
                let data_end = entropy_coded_end(input, segment_end);
                let keep = spectral_start == 0
                    || !full_resolution.contains(&component)
                    || (first_pass && spectral_start <= 9 && !ac_kept.contains(&component));
                if keep {
                    if spectral_start > 0 {
                        ac_kept.push(component);
                    }
                    out.extend_from_slice(&input[i..data_end]);
                }
                i = data_end;
                continue;
            }
            _ => {}
        }
        out.extend_from_slice(segment);
        i = segment_end;
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}

/// Where the entropy-coded data starting at `from` ends: at the next marker,
/// a 0xFF followed by neither a stuffed zero nor a restart marker.
fn entropy_coded_end(input: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(at) = input[i..].iter().position(|&b| b == 0xFF) {
        i += at;
        match input.get(i + 1) {
            Some(0x00 | 0xD0..=0xD7) => i += 2,
            _ => return i,
        }
    }
    input.len()
}

/// CMYK as JPEGs store it (Adobe's inverted ink values, which libjpeg-turbo
/// passes through) to RGB: each channel times K. The full decoder converts
/// the same way, so both paths give one picture.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let times = |a: u8, b: u8| {
        let t = u16::from(a) * u16::from(b) + 128;
        ((t + (t >> 8)) >> 8) as u8
    };
    cmyk.chunks_exact(4)
        .flat_map(|p| [times(p[0], p[3]), times(p[1], p[3]), times(p[2], p[3])])
        .collect()
}

/// A PNG's EXIF orientation and ICC profile, from the chunks before its
/// pixel data.
fn png_metadata(input: &[u8]) -> (Orientation, Option<Vec<u8>>) {
    let Ok(reader) = png::Decoder::new(Cursor::new(input)).read_info() else {
        return (Orientation::NoTransforms, None);
    };
    let info = reader.info();
    (
        orientation_of(info.exif_metadata.as_deref()),
        info.icc_profile.as_ref().map(|icc| icc.to_vec()),
    )
}

/// A WebP's EXIF orientation and ICC profile, from its RIFF chunks.
fn webp_metadata(input: &[u8]) -> (Orientation, Option<Vec<u8>>) {
    use image::ImageDecoder;

    let Ok(mut decoder) = image::codecs::webp::WebPDecoder::new(Cursor::new(input)) else {
        return (Orientation::NoTransforms, None);
    };
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    (orientation, decoder.icc_profile().ok().flatten())
}

/// Decodes a still WebP reduced by the largest integer factor that leaves
/// it at least `min_w × min_h`, libwebp averaging the rows as it decodes
/// them. `None` for an animation (the full decoder takes its first frame)
/// or a file libwebp refuses.
fn decode_webp_reduced(input: &[u8], min_w: u32, min_h: u32) -> Option<DynamicImage> {
    let features = libwebp::features(input)?;
    let n = (features.width / min_w.max(1)).min(features.height / min_h.max(1));
    if n < 2 {
        return None;
    }
    let (w, h) = (features.width.div_ceil(n), features.height.div_ceil(n));
    let picture = libwebp::decode_scaled(input, w, h)?;
    match picture.channels {
        3 => image::RgbImage::from_raw(w, h, picture.pixels).map(DynamicImage::ImageRgb8),
        _ => image::RgbaImage::from_raw(w, h, picture.pixels).map(DynamicImage::ImageRgba8),
    }
}

/// The largest box a PNG is averaged over; what is left of the shrink is
/// the resize's. Keeps the sums of premultiplied samples within `u32`.
const MAX_BOX: u32 = 64;

/// Decodes a non-interlaced PNG row by row, averaging each `n × n` box of
/// pixels into one as the rows arrive, `n` the largest integer that leaves
/// the image at least `min_w × min_h`. Samples become 8-bit (palettes and
/// transparency keys expanded, 16-bit reduced); colour is averaged weighted
/// by alpha, so transparent pixels do not darken their neighbours. `None`
/// for an interlaced PNG (its rows arrive in seven passes) or one the
/// decoder refuses.
fn decode_png_reduced(input: &[u8], min_w: u32, min_h: u32) -> Option<DynamicImage> {
    let mut decoder = png::Decoder::new(Cursor::new(input));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let info = reader.info();
    if info.interlaced {
        return None;
    }
    let (w, h) = (info.width, info.height);
    let n = (w / min_w.max(1)).min(h / min_h.max(1)).min(MAX_BOX);
    if n < 2 {
        return None;
    }
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let alpha = matches!(color, png::ColorType::GrayscaleAlpha | png::ColorType::Rgba);
    let mut boxes = BoxRow::new(w, n, channels, alpha);
    let mut out = Vec::with_capacity(boxes.out_width() * h.div_ceil(n) as usize * channels);
    let mut rows = 0;
    while let Some(row) = reader.next_row().ok()? {
        boxes.add(row.data());
        rows += 1;
        if rows % n == 0 || rows == h {
            boxes.flush_into(&mut out);
        }
    }
    let (ow, oh) = (w.div_ceil(n), h.div_ceil(n));
    match channels {
        1 => image::GrayImage::from_raw(ow, oh, out).map(DynamicImage::ImageLuma8),
        2 => image::GrayAlphaImage::from_raw(ow, oh, out).map(DynamicImage::ImageLumaA8),
        3 => image::RgbImage::from_raw(ow, oh, out).map(DynamicImage::ImageRgb8),
        _ => image::RgbaImage::from_raw(ow, oh, out).map(DynamicImage::ImageRgba8),
    }
}

/// The sums of one row of `n × n` boxes, filled a row of pixels at a time.
struct BoxRow {
    width: usize,
    n: usize,
    channels: usize,
    alpha: bool,
    /// Per box and channel; colour channels premultiplied by alpha when
    /// there is one.
    sums: Vec<u32>,
    rows: usize,
}

impl BoxRow {
    fn new(width: u32, n: u32, channels: usize, alpha: bool) -> Self {
        let (width, n) = (width as usize, n as usize);
        Self {
            width,
            n,
            channels,
            alpha,
            sums: vec![0; width.div_ceil(n) * channels],
            rows: 0,
        }
    }

    fn out_width(&self) -> usize {
        self.width.div_ceil(self.n)
    }

    /// Adds one row of 8-bit pixels.
    fn add(&mut self, row: &[u8]) {
        let ch = self.channels;
        for (pixels, sums) in row.chunks(self.n * ch).zip(self.sums.chunks_exact_mut(ch)) {
            for px in pixels.chunks_exact(ch) {
                if self.alpha {
                    let a = u32::from(px[ch - 1]);
                    for (s, &c) in sums.iter_mut().zip(&px[..ch - 1]) {
                        *s += u32::from(c) * a;
                    }
                    sums[ch - 1] += a;
                } else {
                    for (s, &c) in sums.iter_mut().zip(px) {
                        *s += u32::from(c);
                    }
                }
            }
        }
        self.rows += 1;
    }

    /// Appends the averages of the boxes (the last ones narrower or shorter
    /// at the image's edges) and starts a new row of boxes.
    fn flush_into(&mut self, out: &mut Vec<u8>) {
        let ch = self.channels;
        let round_div = |sum: u32, count: u32| ((sum + count / 2) / count) as u8;
        for (i, sums) in self.sums.chunks_exact_mut(ch).enumerate() {
            let cols = self.n.min(self.width - i * self.n);
            let count = (cols * self.rows) as u32;
            if self.alpha {
                let a = sums[ch - 1];
                for &s in &sums[..ch - 1] {
                    out.push(if a == 0 { 0 } else { round_div(s, a) });
                }
                out.push(round_div(a, count));
            } else {
                out.extend(sums.iter().map(|&s| round_div(s, count)));
            }
            sums.fill(0);
        }
        self.rows = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_average_and_the_edge_box_counts_only_its_pixels() {
        // A 3×2 grey image in boxes of 2: one full box and a 1-wide edge.
        let mut boxes = BoxRow::new(3, 2, 1, false);
        boxes.add(&[10, 20, 200]);
        boxes.add(&[30, 40, 100]);
        let mut out = Vec::new();
        boxes.flush_into(&mut out);
        assert_eq!(out, [25, 150]);
    }

    #[test]
    fn transparent_pixels_do_not_tint_a_box() {
        // Opaque red beside transparent black: the box is red, half opaque.
        let mut boxes = BoxRow::new(2, 2, 4, true);
        boxes.add(&[255, 0, 0, 255, 0, 0, 0, 0]);
        boxes.add(&[255, 0, 0, 255, 0, 0, 0, 0]);
        let mut out = Vec::new();
        boxes.flush_into(&mut out);
        assert_eq!(out, [255, 0, 0, 128]);
    }

    #[test]
    fn a_progressive_jpeg_at_an_eighth_decodes_the_same_from_a_fraction_of_its_scans() {
        for (layout, jpeg) in [
            (
                "4:2:0",
                &include_bytes!("../../../testdata/layouts/rocket-progressive.jpg")[..],
            ),
            (
                "4:4:4",
                &include_bytes!("../../../testdata/layouts/rocket-progressive-444.jpg")[..],
            ),
        ] {
            let fewer = dc_scans_only(jpeg).expect("a progressive JPEG");
            assert!(
                fewer.len() * 10 < jpeg.len() * 7,
                "{layout}: {} of {} bytes kept",
                fewer.len(),
                jpeg.len()
            );
            let fast = decode_jpeg_at(&fewer, 8).expect("what is kept decodes");
            let full = decode_jpeg_at(jpeg, 8).unwrap();
            assert_eq!((fast.width(), fast.height()), (160, 107));
            assert!(fast == full, "{layout}: leaving scans out changed pixels");
        }
    }

    #[test]
    fn a_baseline_jpeg_has_no_scans_to_leave_out() {
        let baseline = include_bytes!("../../../testdata/layouts/rocket-444.jpg");
        assert_eq!(dc_scans_only(baseline), None);
    }

    #[test]
    fn cmyk_with_full_ink_values_is_white_and_no_k_is_black() {
        // Adobe's inverted storage: 255 means no ink.
        assert_eq!(
            cmyk_to_rgb(&[255, 255, 255, 255, 9, 9, 9, 0]),
            [255, 255, 255, 0, 0, 0]
        );
    }
}
