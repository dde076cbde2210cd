//! PNGs reduced by averaging boxes of pixels as their rows inflate.

use std::io::Cursor;

use image::DynamicImage;
use image::metadata::Orientation;

use super::{integer_shrink, orientation_of};

/// A PNG's EXIF orientation and ICC profile, from the chunks before its
/// pixel data.
pub(super) fn metadata(input: &[u8]) -> (Orientation, Option<Vec<u8>>) {
    let Ok(reader) = ::png::Decoder::new(Cursor::new(input)).read_info() else {
        return (Orientation::NoTransforms, None);
    };
    let info = reader.info();
    (
        orientation_of(info.exif_metadata.as_deref()),
        info.icc_profile.as_ref().map(|icc| icc.to_vec()),
    )
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
pub(super) fn decode_reduced(input: &[u8], min_w: u32, min_h: u32) -> Option<DynamicImage> {
    let mut decoder = ::png::Decoder::new(Cursor::new(input));
    decoder.set_transformations(::png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let info = reader.info();
    if info.interlaced {
        return None;
    }
    let (w, h) = (info.width, info.height);
    let n = integer_shrink(w, h, min_w, min_h).min(MAX_BOX);
    if n < 2 {
        return None;
    }
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let alpha = matches!(
        color,
        ::png::ColorType::GrayscaleAlpha | ::png::ColorType::Rgba
    );
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
}
