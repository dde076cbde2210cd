//! libwebp's scaled decoding behind a safe API.
//!
//! A thumbnail of a WebP needs only a small picture, and libwebp can make
//! it directly: its decoder rescales rows (area averaging) as macroblocks
//! are decoded, so the full-size image is never held in memory. No
//! well-kept crate exposes that (the `image` crate's pure-Rust decoder and
//! the `webp` crate decode whole), so this crate calls libwebp through
//! `libwebp-sys`. It is the only crate of the workspace with `unsafe` code:
//! two calls into libwebp, each with what makes it sound.
//!
//! # Layout
//! - [`features`]: a WebP's size and whether it has alpha or animation.
//! - [`decode_scaled`]: a still WebP decoded to a given size, RGB or RGBA.
//! - [`encode`]: RGB or RGBA encoded lossy or lossless (the `image` crate
//!   writes lossless only, ~15× the bytes of lossy for a photograph).

use std::ffi::c_int;

use libwebp_sys::{
    VP8StatusCode, WEBP_CSP_MODE, WEBP_DECODER_ABI_VERSION, WebPBitstreamFeatures, WebPDecode,
    WebPDecoderConfig, WebPEncodeLosslessRGB, WebPEncodeLosslessRGBA, WebPEncodeRGB,
    WebPEncodeRGBA, WebPFree, WebPFreeDecBuffer, WebPGetFeaturesInternal, WebPRGBABuffer,
};

/// What a WebP's headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub has_animation: bool,
}

/// A WebP's features, or `None` when its headers do not parse.
pub fn features(data: &[u8]) -> Option<Features> {
    let mut raw = WebPBitstreamFeatures {
        width: 0,
        height: 0,
        has_alpha: 0,
        has_animation: 0,
        format: 0,
        pad: [0; 5],
    };
    let abi = c_int::try_from(WEBP_DECODER_ABI_VERSION).ok()?;
    // SAFETY: libwebp reads at most `data.len()` bytes from `data`, a live
    // slice, and writes only the `WebPBitstreamFeatures` it is given, which
    // is a valid, exclusively borrowed value of the layout it expects (the
    // ABI version passed is the one the bindings were made for).
    let status = unsafe { WebPGetFeaturesInternal(data.as_ptr(), data.len(), &mut raw, abi) };
    (status == VP8StatusCode::VP8_STATUS_OK).then(|| Features {
        width: u32::try_from(raw.width).unwrap_or(0),
        height: u32::try_from(raw.height).unwrap_or(0),
        has_alpha: raw.has_alpha != 0,
        has_animation: raw.has_animation != 0,
    })
}

/// A decoded picture: rows of `width` pixels of `channels` 8-bit samples
/// (3: RGB, 4: RGBA, not premultiplied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub pixels: Vec<u8>,
}

/// Decodes a still WebP (lossy or lossless) scaled to `width × height`, no
/// larger than the image: RGBA when it has alpha, else RGB. `None` for an
/// animation, a size out of range, or a file libwebp refuses.
pub fn decode_scaled(data: &[u8], width: u32, height: u32) -> Option<Picture> {
    let features = features(data)?;
    if features.has_animation
        || width == 0
        || height == 0
        || width > features.width
        || height > features.height
    {
        return None;
    }
    let channels: u8 = if features.has_alpha { 4 } else { 3 };
    let stride = usize::try_from(width).ok()? * usize::from(channels);
    let mut pixels = vec![0u8; stride.checked_mul(usize::try_from(height).ok()?)?];
    let mut config = WebPDecoderConfig::new().ok()?;
    config.options.use_scaling = 1;
    // Filtering and output on a second thread beside parsing, as libvips
    // decodes: most of a large lossy WebP's wall time otherwise.
    config.options.use_threads = 1;
    config.options.scaled_width = c_int::try_from(width).ok()?;
    config.options.scaled_height = c_int::try_from(height).ok()?;
    config.output.colorspace = if features.has_alpha {
        WEBP_CSP_MODE::MODE_RGBA
    } else {
        WEBP_CSP_MODE::MODE_RGB
    };
    config.output.is_external_memory = 1;
    config.output.u.RGBA = WebPRGBABuffer {
        rgba: pixels.as_mut_ptr(),
        stride: c_int::try_from(stride).ok()?,
        size: pixels.len(),
    };
    // SAFETY: `config` was initialised by libwebp (`WebPDecoderConfig::new`)
    // and is exclusively borrowed; libwebp reads at most `data.len()` bytes
    // of `data`. Its output is external memory: `pixels`, which holds exactly
    // `stride × height` bytes, as `size` and `stride` say, and is neither
    // moved nor dropped until after the call; libwebp checks the buffer
    // against the scaled size before writing and writes nowhere else.
    let status = unsafe { WebPDecode(data.as_ptr(), data.len(), &mut config) };
    // SAFETY: frees what libwebp allocated inside `config.output` and
    // nothing else: with external memory that is no pixel buffer, so
    // `pixels` stays ours.
    unsafe { WebPFreeDecBuffer(&mut config.output) };
    (status == VP8StatusCode::VP8_STATUS_OK).then_some(Picture {
        width,
        height,
        channels,
        pixels,
    })
}

type LossyEncoder =
    unsafe extern "C" fn(*const u8, c_int, c_int, c_int, f32, *mut *mut u8) -> usize;
type LosslessEncoder = unsafe extern "C" fn(*const u8, c_int, c_int, c_int, *mut *mut u8) -> usize;

/// How [`encode`] compresses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compression {
    /// libwebp's quality factor, 0 to 100, at its default method (4), as
    /// libvips encodes.
    Lossy {
        quality: f32,
    },
    Lossless,
}

/// Encodes rows of `width` pixels of `channels` (3: RGB, 4: RGBA) 8-bit
/// samples. `None` when the sizes do not match `pixels` or libwebp refuses
/// (a side over 16383).
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: u8,
    compression: Compression,
) -> Option<Vec<u8>> {
    let stride = usize::try_from(width)
        .ok()?
        .checked_mul(usize::from(channels))?;
    let fits = stride.checked_mul(usize::try_from(height).ok()?)? == pixels.len();
    if !fits || width == 0 || height == 0 || !matches!(channels, 3 | 4) {
        return None;
    }
    let (w, h, s) = (
        c_int::try_from(width).ok()?,
        c_int::try_from(height).ok()?,
        c_int::try_from(stride).ok()?,
    );
    let rgb = pixels.as_ptr();
    let mut out = std::ptr::null_mut();
    let len = match compression {
        Compression::Lossy { quality } => {
            let encode: LossyEncoder = if channels == 3 {
                WebPEncodeRGB
            } else {
                WebPEncodeRGBA
            };
            // SAFETY: `rgb` points at `pixels`, a live slice of exactly `h`
            // rows of `s` bytes of `channels` samples per pixel (checked
            // above; the function is the one for that layout), which libwebp
            // only reads; `out` is a valid place for the pointer it writes.
            unsafe { encode(rgb, w, h, s, quality, &mut out) }
        }
        Compression::Lossless => {
            let encode: LosslessEncoder = if channels == 3 {
                WebPEncodeLosslessRGB
            } else {
                WebPEncodeLosslessRGBA
            };
            // SAFETY: as for the lossy call above.
            unsafe { encode(rgb, w, h, s, &mut out) }
        }
    };
    if out.is_null() {
        return None;
    }
    // SAFETY: on success libwebp returns `len` initialised bytes at `out`,
    // which nothing else refers to; they are copied before being freed.
    let bytes = (len > 0).then(|| unsafe { std::slice::from_raw_parts(out, len) }.to_vec());
    // SAFETY: `out` came from libwebp's allocator and is freed once, here.
    unsafe { WebPFree(out.cast()) };
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×2 lossless WebP whose columns alternate opaque red and clear black.
    fn tiny() -> Vec<u8> {
        let rgba: Vec<u8> = (0..8)
            .flat_map(|i| {
                if i % 2 == 0 {
                    [255, 0, 0, 255]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        let mut out = Vec::new();
        libwebp_encode_lossless(&rgba, 4, 2, &mut out);
        out
    }

    fn libwebp_encode_lossless(rgba: &[u8], w: u32, h: u32, out: &mut Vec<u8>) {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: test only; `rgba` holds w × h × 4 bytes at stride w × 4,
        // and the buffer libwebp returns is copied, then freed once.
        let len = unsafe {
            libwebp_sys::WebPEncodeLosslessRGBA(
                rgba.as_ptr(),
                w as c_int,
                h as c_int,
                (w * 4) as c_int,
                &mut ptr,
            )
        };
        assert!(len > 0 && !ptr.is_null());
        // SAFETY: libwebp returned `len` initialised bytes at `ptr`.
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, len) });
        // SAFETY: `ptr` came from libwebp's allocator and is freed once.
        unsafe { libwebp_sys::WebPFree(ptr.cast()) };
    }

    #[test]
    fn lossy_rgb_has_no_alpha_and_lossless_keeps_every_sample() {
        let rgb: Vec<u8> = (0..64 * 32 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let lossy = encode(&rgb, 64, 32, 3, Compression::Lossy { quality: 75.0 }).unwrap();
        let f = features(&lossy).unwrap();
        assert_eq!((f.width, f.height, f.has_alpha), (64, 32, false));

        // RGB: the scaling decoder premultiplies alpha, which rounds.
        let lossless = encode(&rgb, 64, 32, 3, Compression::Lossless).unwrap();
        let back = decode_scaled(&lossless, 64, 32).unwrap();
        assert_eq!(back.pixels, rgb);
    }

    #[test]
    fn encode_refuses_pixels_that_do_not_fill_the_size() {
        let rgb = vec![0u8; 10 * 10 * 3];
        assert_eq!(encode(&rgb, 10, 11, 3, Compression::Lossless), None);
        assert_eq!(encode(&rgb, 10, 10, 4, Compression::Lossless), None);
        assert_eq!(encode(&[], 0, 0, 3, Compression::Lossless), None);
    }

    #[test]
    fn features_of_a_webp_and_of_garbage() {
        let webp = tiny();
        assert_eq!(
            features(&webp),
            Some(Features {
                width: 4,
                height: 2,
                has_alpha: true,
                has_animation: false,
            })
        );
        assert_eq!(features(b"RIFF\0\0\0\0WEBPnot really"), None);
    }

    #[test]
    fn clear_pixels_do_not_darken_colour_when_scaled() {
        let picture = decode_scaled(&tiny(), 2, 1).unwrap();
        assert_eq!((picture.width, picture.height, picture.channels), (2, 1, 4));
        // Each pixel averages two red and two clear ones: red, half opaque.
        for pixel in picture.pixels.chunks_exact(4) {
            assert_eq!(&pixel[..3], &[255, 0, 0], "{:?}", picture.pixels);
            assert!((126..=129).contains(&pixel[3]), "{:?}", picture.pixels);
        }
    }

    #[test]
    fn refuses_to_enlarge_and_refuses_a_truncated_file() {
        let webp = tiny();
        assert_eq!(decode_scaled(&webp, 8, 4), None);
        assert_eq!(decode_scaled(&webp[..webp.len() - 4], 2, 1), None);
    }
}
