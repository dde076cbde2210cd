//! What a file's header says, read without decoding a pixel, and what a
//! recipe will cost on that file: the web server judges uploads with it, a
//! worker admits messages with it, and the engine decides how to decode.

use std::io::{BufRead, Cursor, Read, Seek};

pub use image::ImageFormat;
use image::{ImageDecoder, ImageReader};

use crate::cost::{self, Decoding, Estimate, Source};
use crate::limits::Limits;
use crate::recipe::{Encoding, Op, OutputFormat};

mod shrink;
pub use shrink::{Shrink, dct_scale, fit_inside, shrink_plan};

/// The formats Darkroom reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    Jpeg,
    Png,
    WebP,
    Gif,
    Tiff,
    Bmp,
    /// HEIF with HEVC inside: what iPhones save.
    Heic,
    /// HEIF with AV1 inside.
    Avif,
    /// JPEG XL, bare codestream or in its container.
    Jxl,
}

/// The library that decodes a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// The `image` crate, as this format.
    Image(ImageFormat),
    /// libheif.
    Heif,
    /// jxl-oxide.
    JpegXl,
}

impl InputFormat {
    pub const ALL: [InputFormat; 9] = [
        InputFormat::Jpeg,
        InputFormat::Png,
        InputFormat::WebP,
        InputFormat::Gif,
        InputFormat::Tiff,
        InputFormat::Bmp,
        InputFormat::Heic,
        InputFormat::Avif,
        InputFormat::Jxl,
    ];

    /// The format an upload was stored as, from its content type.
    pub fn from_mime_type(mime_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.mime_type() == mime_type)
    }

    /// What decodes the format.
    pub fn decoder(self) -> Decoder {
        match self {
            InputFormat::Jpeg => Decoder::Image(ImageFormat::Jpeg),
            InputFormat::Png => Decoder::Image(ImageFormat::Png),
            InputFormat::WebP => Decoder::Image(ImageFormat::WebP),
            InputFormat::Gif => Decoder::Image(ImageFormat::Gif),
            InputFormat::Tiff => Decoder::Image(ImageFormat::Tiff),
            InputFormat::Bmp => Decoder::Image(ImageFormat::Bmp),
            InputFormat::Heic | InputFormat::Avif => Decoder::Heif,
            InputFormat::Jxl => Decoder::JpegXl,
        }
    }

    /// What decoding it costs.
    pub fn decoding(self) -> Decoding {
        match self {
            InputFormat::Jxl => cost::JXL_DECODING,
            _ => cost::DECODING,
        }
    }

    /// The usual file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            InputFormat::Jpeg => "jpg",
            InputFormat::Png => "png",
            InputFormat::WebP => "webp",
            InputFormat::Gif => "gif",
            InputFormat::Tiff => "tiff",
            InputFormat::Bmp => "bmp",
            InputFormat::Heic => "heic",
            InputFormat::Avif => "avif",
            InputFormat::Jxl => "jxl",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            InputFormat::Jpeg => "image/jpeg",
            InputFormat::Png => "image/png",
            InputFormat::WebP => "image/webp",
            InputFormat::Gif => "image/gif",
            InputFormat::Tiff => "image/tiff",
            InputFormat::Bmp => "image/bmp",
            InputFormat::Heic => "image/heic",
            InputFormat::Avif => "image/avif",
            InputFormat::Jxl => "image/jxl",
        }
    }

    /// Whether today's browsers show such a file in an `<img>`: Safari
    /// alone shows HEIC and TIFF, Safari and Chrome behind a flag JPEG XL.
    pub fn browsers_show(self) -> bool {
        !matches!(
            self,
            InputFormat::Heic | InputFormat::Tiff | InputFormat::Jxl
        )
    }
}

/// Why a file is refused from its header. Permanent.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("not a supported image (JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC, AVIF or JPEG XL)")]
    NotAnImage,
    #[error("image is {width}×{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("image is {width}×{height}, over the largest side of {limit} pixels")]
    TooLarge { width: u32, height: u32, limit: u32 },
    #[error("image is corrupt or truncated: {0}")]
    Corrupt(String),
}

/// What a file's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub format: InputFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel of the decoded image.
    pub bytes_per_pixel: u8,
    /// Whether a JPEG can be decoded at a reduced scale (any 8-bit JPEG,
    /// not a 12-bit one); false for other formats.
    pub scalable: bool,
}

impl Probe {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Identifies the format from the magic bytes (not the file name).
pub fn sniff_format(prefix: &[u8]) -> Result<InputFormat, ProbeError> {
    let kind = imagesize::image_type(prefix);
    if let Ok(imagesize::ImageType::Jxl) = kind {
        return Ok(InputFormat::Jxl);
    }
    if let Ok(imagesize::ImageType::Heif(compression)) = kind {
        // Any ISO media file (an MP4 video too) reads as HEIF of unknown
        // compression: only a HEIF brand makes it an image. HEIF holding
        // JPEG is libheif's to decode; AV1 is told apart, as a format of its
        // own.
        return match compression {
            imagesize::Compression::Av1 => Ok(InputFormat::Avif),
            imagesize::Compression::Unknown if !has_heif_brand(prefix) => {
                Err(ProbeError::NotAnImage)
            }
            _ => Ok(InputFormat::Heic),
        };
    }
    match image::guess_format(prefix) {
        Ok(ImageFormat::Jpeg) => Ok(InputFormat::Jpeg),
        Ok(ImageFormat::Png) => Ok(InputFormat::Png),
        Ok(ImageFormat::WebP) => Ok(InputFormat::WebP),
        Ok(ImageFormat::Gif) => Ok(InputFormat::Gif),
        Ok(ImageFormat::Tiff) => Ok(InputFormat::Tiff),
        Ok(ImageFormat::Bmp) => Ok(InputFormat::Bmp),
        _ => Err(ProbeError::NotAnImage),
    }
}

/// Whether an ISO media file's major brand is one of HEIF's general ones.
fn has_heif_brand(prefix: &[u8]) -> bool {
    const BRANDS: [&[u8]; 4] = [b"mif1", b"msf1", b"mif2", b"miaf"];
    prefix
        .get(8..12)
        .is_some_and(|brand| BRANDS.contains(&brand))
}

/// Reads format and dimensions from the start of a file and checks them
/// against `limits`, without decoding pixels.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, ProbeError> {
    probe_reader(Cursor::new(bytes), limits)
}

/// [`probe`] of a file read through `reader` from its start, which reads no
/// more of it than its headers.
pub fn probe_reader<R: BufRead + Seek>(
    mut reader: R,
    limits: &Limits,
) -> Result<Probe, ProbeError> {
    let prefix = reader
        .fill_buf()
        .map_err(|e| ProbeError::Corrupt(e.to_string()))?;
    let format = sniff_format(prefix)?;
    let corrupt = |e: image::ImageError| ProbeError::Corrupt(e.to_string());
    let probe = match format.decoder() {
        // Reads the headers in place; the generic reader copies the file first.
        Decoder::Image(ImageFormat::Jpeg) => jpeg_header(reader).map_err(ProbeError::Corrupt)?,
        Decoder::Image(image_format) => {
            let decoder = ImageReader::with_format(reader, image_format)
                .into_decoder()
                .map_err(corrupt)?;
            decoder_header(format, &decoder)
        }
        // Reads the image header and colour profile, no frame.
        Decoder::JpegXl => {
            let decoder = jxl_oxide::integration::JxlDecoder::new(reader).map_err(corrupt)?;
            decoder_header(format, &decoder)
        }
        Decoder::Heif => heif_header(reader, format)?,
    };
    check_dimensions(probe.width, probe.height, limits)?;
    Ok(probe)
}

/// What an `image` decoder read of a `format` file's header.
fn decoder_header(format: InputFormat, decoder: &impl ImageDecoder) -> Probe {
    let (width, height) = decoder.dimensions();
    Probe {
        format,
        width,
        height,
        bytes_per_pixel: decoder.color_type().bytes_per_pixel(),
        scalable: false,
    }
}

/// A JPEG's frame header.
fn jpeg_header(input: impl Read) -> Result<Probe, String> {
    let mut decoder = jpeg_decoder::Decoder::new(input);
    decoder.read_info().map_err(|e| e.to_string())?;
    let info = decoder.info().ok_or("JPEG has no frame header")?;
    let (bytes_per_pixel, scalable) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (1, true),
        jpeg_decoder::PixelFormat::RGB24 => (3, true),
        jpeg_decoder::PixelFormat::L16 => (2, false),
        jpeg_decoder::PixelFormat::CMYK32 => (4, true),
    };
    Ok(Probe {
        format: InputFormat::Jpeg,
        width: u32::from(info.width),
        height: u32::from(info.height),
        bytes_per_pixel,
        scalable,
    })
}

/// A HEIF's size: the largest image its properties declare, which bounds
/// the primary image whichever item that is (the decoder checks the primary
/// image itself again before decoding).
fn heif_header<R: BufRead + Seek>(mut reader: R, format: InputFormat) -> Result<Probe, ProbeError> {
    let size = imagesize::reader_size(&mut reader).map_err(|e| match e {
        imagesize::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ProbeError::Corrupt("HEIF ends before its image properties".into())
        }
        e => ProbeError::Corrupt(format!("HEIF header: {e}")),
    })?;
    let side = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    if size.width == 0 || size.height == 0 {
        return Err(ProbeError::Corrupt("HEIF declares an empty image".into()));
    }
    Ok(Probe {
        format,
        width: side(size.width),
        height: side(size.height),
        // Decoded to 8-bit RGBA at most (HDR is reduced to 8 bits).
        bytes_per_pixel: 4,
        scalable: false,
    })
}

/// Refuses a size over either limit.
pub fn check_dimensions(width: u32, height: u32, limits: &Limits) -> Result<(), ProbeError> {
    if width > limits.max_dimension || height > limits.max_dimension {
        return Err(ProbeError::TooLarge {
            width,
            height,
            limit: limits.max_dimension,
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ProbeError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// The encoding `ops` end in: their last `format` op, else
/// `default_format`, else the input's (JPEG for JPEG, HEIC and JPEG XL,
/// AVIF for AVIF, PNG otherwise).
pub fn output_encoding(
    ops: &[Op],
    input: InputFormat,
    default_format: Option<OutputFormat>,
) -> Encoding {
    ops.iter()
        .rev()
        .find_map(|op| match op {
            Op::Format(encoding) => Some(encoding.clone()),
            _ => None,
        })
        .unwrap_or_else(|| {
            Encoding::of(default_format.unwrap_or(match input {
                // A HEIC or JPEG XL out would not open in most browsers
                // and programs.
                InputFormat::Jpeg | InputFormat::Heic | InputFormat::Jxl => OutputFormat::Jpeg,
                InputFormat::Avif => OutputFormat::Avif,
                _ => OutputFormat::Png,
            }))
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
        decoding: probe.format.decoding(),
    };
    let encoding = output_encoding(ops, probe.format, default_format);
    cost::estimate(&source, ops, &encoding)
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
            let d = dct_scale(w, h, nw, nh);
            u64::from(w.div_ceil(d)) * u64::from(h.div_ceil(d))
        }
        None => probe.pixels(),
    };
    let upright = shrink_plan(w, h, ops.first()).map(|(_, nw, nh)| (nw, nh));
    let transposed = shrink_plan(h, w, ops.first()).map(|(_, nw, nh)| (nh, nw));
    at(upright).max(at(transposed))
}

#[cfg(test)]
mod tests;
