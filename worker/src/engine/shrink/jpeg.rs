//! JPEGs decoded at 1/2, 1/4 or 1/8 by libjpeg-turbo, which scales the
//! inverse DCT, and progressive ones at 1/8 from a fraction of their scans.

use std::io::Cursor;

use common::probe::dct_scale;
use image::DynamicImage;
use image::metadata::Orientation;

use super::orientation_of;

/// A JPEG's EXIF orientation and ICC profile, read from its headers without
/// copying or decoding it.
pub(super) fn metadata(input: &[u8]) -> (Orientation, Option<Vec<u8>>) {
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
pub(super) fn decode_scaled(input: &[u8], min_w: u32, min_h: u32) -> Option<DynamicImage> {
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
        && let Some(img) = scans_needed_at_an_eighth(input).and_then(|fewer| decode_at(&fewer, 8))
    {
        return Some(img);
    }
    decode_at(input, divisor)
}

/// Decodes a JPEG at 1/`divisor` of its size with libjpeg-turbo.
fn decode_at(input: &[u8], divisor: u32) -> Option<DynamicImage> {
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
fn scans_needed_at_an_eighth(input: &[u8]) -> Option<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progressive_jpeg_at_an_eighth_decodes_the_same_from_a_fraction_of_its_scans() {
        for (layout, jpeg) in [
            (
                "4:2:0",
                &include_bytes!("../../../../testdata/layouts/rocket-progressive.jpg")[..],
            ),
            (
                "4:4:4",
                &include_bytes!("../../../../testdata/layouts/rocket-progressive-444.jpg")[..],
            ),
        ] {
            let fewer = scans_needed_at_an_eighth(jpeg).expect("a progressive JPEG");
            assert!(
                fewer.len() * 10 < jpeg.len() * 7,
                "{layout}: {} of {} bytes kept",
                fewer.len(),
                jpeg.len()
            );
            let fast = decode_at(&fewer, 8).expect("what is kept decodes");
            let full = decode_at(jpeg, 8).unwrap();
            assert_eq!((fast.width(), fast.height()), (160, 107));
            assert!(fast == full, "{layout}: leaving scans out changed pixels");
        }
    }

    #[test]
    fn a_baseline_jpeg_has_no_scans_to_leave_out() {
        let baseline = include_bytes!("../../../../testdata/layouts/rocket-444.jpg");
        assert_eq!(scans_needed_at_an_eighth(baseline), None);
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
